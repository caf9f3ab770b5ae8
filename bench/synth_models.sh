# synth_models.sh — sourced by the engine benchmarks: the synthetic models of the shapes
# llama.cpp was measured on, made once with `gardefou model synth` (seed 1234, the Llama 2
# vocabulary when ../shared has it). Needs BUILD (a build with gateway/gardefou) and DIR.
# bench_model NAME prints the path of $DIR/NAME.gguf, making the file first if it is missing;
# NAME is one of s110-f32 s110-q8 tl-q8 tl-q4.
bench_model() {
  local shape type f="$DIR/$1.gguf" vocab=../shared/models/ggml-vocab-llama-spm.gguf
  case $1 in
    s110-f32) shape=stories110m type=f32 ;;
    s110-q8) shape=stories110m type=q8_0 ;;
    tl-q8) shape=tinyllama type=q8_0 ;;
    tl-q4) shape=tinyllama type=q4_0 ;;
    *) echo "unknown benchmark model '$1' (s110-f32 s110-q8 tl-q8 tl-q4)" >&2; return 2 ;;
  esac
  if [ ! -f "$f" ]; then
    local v=(--no-vocab)
    [ -f "$vocab" ] && v=(--vocab "$vocab")
    "$BUILD/gateway/gardefou" model synth --shape "$shape" --type "$type" --seed 1234 \
      "${v[@]}" --out "$f" >/dev/null 2>&1 || { echo "model synth $1 failed" >&2; return 1; }
  fi
  echo "$f"
}
