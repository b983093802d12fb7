"""gen_text.py: deterministic varied text for the tokenizer tests and benchmark: Latin with
accents, Cyrillic, Greek, CJK, Hangul, Arabic, Devanagari (combining marks), emoji with
ZWJ sequences, skin tones and flags, whitespace runs, tabs, CR, digit runs, code,
punctuation, contractions ('s 't 're 've 'm 'll 'd in both cases), exotic spaces, and
special-token strings written in the text. make_text(n_bytes, seed) returns a str of at
least n_bytes UTF-8 bytes with '\n' between lines."""
import random

WORDS = {
    "en": "the quick brown fox jumps over lazy dog model training data token distil layer "
          "attention state space mamba hybrid teacher student loss gradient step".split(),
    "fr": "déjà vu café naïve être garçon élève où français très été hôpital".split(),
    "de": "Straße Größe über Mädchen schön fünf Käse Übung Äpfel Gaſſe".split(),
    "ru": "привет мир модель обучение данные Москва ёлка щука съезд".split(),
    "el": "γειά σου κόσμε μοντέλο Αθήνα ψυχή ωραίο ΣΟΦΙΑ λόγος".split(),
    "zh": "我们 模型 训练 数据 中文 分词 测试 人工智能 北京".split(),
    "ja": "こんにちは 世界 カタカナ ひらがな 東京 日本語 テスト".split(),
    "ko": "안녕하세요 세계 모델 학습 데이터 한국어".split(),
    "ar": "مرحبا بالعالم نموذج تدريب البيانات العربية".split(),
    "hi": "नमस्ते दुनिया मॉडल प्रशिक्षण डेटा हिन्दी क्षत्रिय".split(),
}
EMOJI = ["😀", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "❤️", "🧑🏿‍💻", "👩‍🔬", "✨", "🤖"]
PUNCT = list(".,;:!?-—–()[]{}<>\"'«»„“”…/\\|@#$%^&*_+=~`")
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'LL", "'D", "'x", "'ſ"]
SPACES = [" ", "  ", "   ", "\t", " \t ", "\u00a0", "\u3000", "\u2009", "    ", "\t\t"]
SPECIAL = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<tool>"]
CODE = [
    "def f(x):\n    return x ** 2 + 1",
    "for (int i = 0; i < n; i++) { s += a[i]; }",
    "if x != None and y >= 3:\n\tprint(f\"{x:>10}\")",
    "const y = arr.map((v) => v * 2).filter(Boolean);",
    "#include <stdio.h>\nint main(void) { return 0; }",
    "SELECT id, name FROM users WHERE age > 21;  -- comment",
]


def word(r):
    lang = r.choice(list(WORDS))
    w = r.choice(WORDS[lang])
    roll = r.random()
    if roll < 0.08:
        w = w.upper()
    elif roll < 0.16:
        w = w.capitalize()
    elif roll < 0.22:
        w += r.choice(CONTRACTIONS)
    return w


def random_chars(r):
    lo, hi = r.choice([(0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0x0410, 0x044F), (0x0391, 0x03C9),
                       (0x0621, 0x064A), (0x0905, 0x0939), (0x00C0, 0x00FF), (0x3041, 0x3096)])
    return "".join(chr(r.randint(lo, hi)) for _ in range(r.randint(1, 6)))


def line(r):
    parts = []
    for _ in range(r.randint(1, 25)):
        roll = r.random()
        if roll < 0.55:
            parts.append(word(r))
        elif roll < 0.62:
            parts.append(str(r.randint(0, 10 ** r.randint(1, 12))))
        elif roll < 0.69:
            parts.append(r.choice(PUNCT) * r.randint(1, 3))
        elif roll < 0.75:
            parts.append(r.choice(EMOJI) * r.randint(1, 2))
        elif roll < 0.80:
            parts.append(random_chars(r))
        elif roll < 0.83:
            parts.append(r.choice(SPECIAL))
        elif roll < 0.86:
            parts.append(r.choice(CODE))
        else:
            parts.append(r.choice(SPACES))
        parts.append(" " if r.random() < 0.8 else r.choice(SPACES + ["", ""]))
    s = "".join(parts)
    roll = r.random()
    if roll < 0.05:
        s = "  " + s
    elif roll < 0.10:
        s += "   "
    elif roll < 0.13:
        s += "\r"
    elif roll < 0.16:
        s = "\t" + s
    return s


def make_text(n_bytes, seed=1234):
    r = random.Random(seed)
    lines, size = [], 0
    while size < n_bytes:
        s = line(r)
        if r.random() < 0.03:
            s = ""  # empty lines
        lines.append(s)
        size += len(s.encode("utf-8")) + 1
    return "\n".join(lines) + "\n"
