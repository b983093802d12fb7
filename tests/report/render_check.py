# render_check.py REPORT.html CHROMIUM OUTDIR EVALDIR...: `kdtrain report`'s page in
# headless Chromium.
#  1. No console message while loading it (the page has no script; a resource it tried to
#     fetch would be refused by its Content-Security-Policy and logged). A control page with
#     the same policy and one remote image must log one, or the check proves nothing.
#  2. Every plot area (<rect class="area">, measured by a copy of the page with a script
#     that writes their boxes into the DOM) holds pixels of another colour than its white
#     background in a full-page screenshot: the curves were drawn.
#  3. The evaluation table (id="eval") holds each eval stage's eval.json values (%.4f) in
#     that stage's column, on the row of the key.
import html.parser, json, os, re, struct, subprocess, sys, zlib

import numpy as np

report, chromium, out = sys.argv[1], sys.argv[2], sys.argv[3]
eval_dirs = sys.argv[4:]
W = 1280
BASE = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        "--force-device-scale-factor=1", "--enable-logging=stderr", "--v=0"]


def chrome(args, page):
    r = subprocess.run(BASE + args + ["file://" + os.path.abspath(page)], capture_output=True, text=True, timeout=120)
    console = [l for l in r.stderr.splitlines() if "CONSOLE" in l or "Refused to" in l]
    return r.stdout, console


# 1. console
_, console = chrome([f"--window-size={W},800", "--dump-dom"], report)
assert not console, "console messages while loading the report:\n" + "\n".join(console)
control = os.path.join(out, "control.html")
with open(control, "w") as f:
    f.write('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src '
            "'none'; style-src 'unsafe-inline'\"></head><body><img src=\"http://127.0.0.1:9/x.png\"></body></html>")
_, console = chrome([f"--window-size={W},800", "--dump-dom"], control)
assert console, "the control page's refused image logged nothing: the console check cannot see errors"
print(f"console: clean (the control page logged {len(console)} line(s))")

# 2. plot areas
src = open(report).read()
probe = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", src)
probe = probe.replace("</body>", """<script>
var out = [];
document.querySelectorAll("rect.area").forEach(function (r) {
  var b = r.getBoundingClientRect();
  out.push([b.left + window.scrollX, b.top + window.scrollY, b.width, b.height]);
});
var p = document.createElement("pre"); p.id = "probe";
p.textContent = JSON.stringify({areas: out, height: document.documentElement.scrollHeight});
document.body.appendChild(p);
</script></body>""")
probe_path = os.path.join(out, "probe.html")
open(probe_path, "w").write(probe)
dom, _ = chrome([f"--window-size={W},800", "--dump-dom"], probe_path)
m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
assert m, "the probe copy of the page did not report its plot areas"
info = json.loads(html.unescape(m.group(1)))
areas, height = info["areas"], int(info["height"]) + 10
assert areas, "the report has no plot area"
shot = os.path.join(out, "shot.png")
chrome([f"--window-size={W},{height}", f"--screenshot={shot}"], report)


def read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6) and not interlace, f"{path}: PNG depth {depth} type {ctype}"
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    img = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        if ft == 0:
            cur = line
        elif ft == 2:
            cur = (line + prev) & 255
        elif ft == 1:
            cur = (np.cumsum(line.reshape(w, bpp), axis=0) & 255).reshape(-1)
        else:  # average and Paeth depend on the byte to the left: byte by byte
            cur, c = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                if ft == 3:
                    cur[i] = (cur[i] + ((a + c[i]) >> 1)) & 255
                else:
                    b, cc = c[i], c[i - bpp] if i >= bpp else 0
                    p = a + b - cc
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                    cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else cc)) & 255
            cur = np.array(cur, dtype=np.int32)
        img[y] = cur
        prev = cur
    return img.reshape(h, w, bpp)[:, :, :3]


img = read_png(shot)
print(f"screenshot {img.shape[1]}x{img.shape[0]}, {len(areas)} plot areas")
for i, (x, y, w, h) in enumerate(areas):
    x0, y0, x1, y1 = int(x) + 3, int(y) + 3, int(x + w) - 3, int(y + h) - 3
    assert y1 <= img.shape[0] and x1 <= img.shape[1], f"plot {i} at {x0},{y0}-{x1},{y1} lies outside the screenshot"
    crop = img[y0:y1, x0:x1]
    differ = int(np.any(crop != 255, axis=2).sum())
    assert differ >= 20, f"plot {i} at ({x0},{y0})-({x1},{y1}): only {differ} pixels differ from the white background"
    print(f"plot {i}: {differ} of {crop.shape[0] * crop.shape[1]} pixels drawn")


# 3. evaluation table, from the page as Chromium parsed it
class Table(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.inside, self.cell = [], False, None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("id", "eval") in attrs:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


dom, _ = chrome([f"--window-size={W},800", "--dump-dom"], report)
if not eval_dirs:
    print("render_check: OK (no eval stages to check)")
    sys.exit(0)
t = Table()
t.feed(dom)
assert t.rows, "no table id=eval in the rendered page"
header = t.rows[0]
rows = {r[0]: r for r in t.rows[1:]}
checked = 0
for d in eval_dirs:
    name = os.path.basename(d).split("-", 1)[1]
    assert name in header, f"eval stage {name} has no column in {header}"
    col = header.index(name)
    for k, v in json.load(open(os.path.join(d, "eval.json"))).items():
        assert k in rows, f"{name}: eval.json key {k} has no row"
        want = f"{v:.4f}"
        assert rows[k][col] == want, f"{name}: {k}: table says {rows[k][col]!r}, eval.json {want}"
        checked += 1
print(f"eval table: {checked} values of {len(eval_dirs)} eval stages match eval.json")
print("render_check: OK")
