# recipe.sh: sourced by the slurm tests. write_recipe FILE NAME STEPS STAGE... writes a
# tiny pretrain-only recipe whose stages each read data/STAGE.h5 (a copy of the synth
# corpus, so one stage's data can be damaged alone).
write_recipe() {
  local file=$1 name=$2 steps=$3 s; shift 3
  [ -f "$work/data/pretrain.h5" ] || make_data
  {
    printf "run:\n  name: %s\n  out_dir: runs/%s\n  seed: 1\n  backend: cpu\n" "$name" "$name"
    printf 'model:\n  arch: {vocab_size: 259, d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 2, head_dim: 16, ffn_dim: 64}\n'
    echo "stages:"
    for s in "$@"; do
      cp "$work/data/pretrain.h5" "$work/data/$s.h5"
      echo "  - name: $s"
      echo "    kind: pretrain"
      echo "    data: data/$s.h5"
      echo "    steps: $steps"
      echo "    log_every: 1"
      echo "    batch: {global: 4, micro: 2, seq_len: 32}"
      echo "    checkpoint: {every: 5, keep: 3}"
    done
  } >"$file"
}
