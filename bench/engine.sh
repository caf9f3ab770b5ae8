#!/usr/bin/env bash
# engine.sh — speed of the embedded engine on synthetic models of the shapes llama.cpp was
# measured on (../shared/bench/llamacpp-baseline.md): stories110M F32 and Q8_0, TinyLlama Q8_0
# and Q4_0, with 1 and 2 threads. For each: prompt tokens/s (128-token prompt), generation
# tokens/s (64 tokens), aggregate tokens/s of 1, 4 and 8 sequences decoded together, generation
# as a share of the memory-bandwidth limit, and ratios against llama.cpp's medians.
# The models are made once with `gardefou model synth` in $GF_BENCH_DIR (default a temp dir;
# about 2.4 GB). Set GF_BENCH_MODELS="s110-f32 s110-q8" to run a subset, GF_BENCH_REPS for reps.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" bench/bench_engine gateway/gardefou >/dev/null
DIR=${GF_BENCH_DIR:-$(mktemp -d /tmp/gf-engine-bench-XXXXXX)}
mkdir -p "$DIR"
MODELS=${GF_BENCH_MODELS:-"s110-f32 s110-q8 tl-q8 tl-q4"}
REPS=${GF_BENCH_REPS:-3}
. bench/synth_models.sh

# llama.cpp default CPU build, medians from llamacpp-baseline.md: pp128 1t, pp128 2t, tg64 1t,
# tg64 2t, and its generation as a share of the bandwidth limit (%) on 1 and 2 threads (its
# probe: a read-only AVX-512 sum with 8 accumulators, best of 10, as bench_engine's)
declare -A BASE=(
  [s110-f32]="667 1137 70.8 116 77 65"
  [s110-q8]="724 1280 216 239 63 36"
  [tl-q8]="75.2 145 25.5 33.9 70 48"
  [tl-q4]="120 219 37.8 67.8 55 51"
)

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (on a shared machine figures are noisy)"
printf "%-9s %2s %9s %7s %8s %7s %8s %8s %8s %6s %7s %6s %6s\n" model thr pp128 "x llama" tg64 \
  "x llama" agg1 agg4 agg8 "8/1" "GB/s" "%limit" "llama"
CPU_ROWS=()
for m in $MODELS; do
  f=$(bench_model "$m")
  read -r bpp1 bpp2 btg1 btg2 blim1 blim2 <<<"${BASE[$m]}"
  for t in 1 2; do
    out=$("$BUILD/bench/bench_engine" "$f" "$t" "$REPS")
    get() { echo "$out" | sed -n "s/^$1=//p"; }
    pp=$(get pp128); tg=$(get tg64); a1=$(get agg1); a4=$(get agg4); a8=$(get agg8)
    if [ "$t" = 1 ]; then
      [ -n "${CPU_LINE:-}" ] || { CPU_LINE=$(get cpu); PEAK=$(get peak_gflops); }
      # share of the float peak: F32 models only (the quantized ones run integer products)
      pk=$(awk -v a="$(get pp128_cpu)" -v f="$(get pp_gflop_per_token)" \
        -v p="$(get peak_gflops)" -v ty="${m##*-}" \
        'BEGIN{ if (ty == "f32") printf "%6.0f%%", 100 * a * f / p; else printf "%7s", "-" }')
      CPU_ROWS+=("$(printf "%-9s %9.1f %7.2f %s %8.1f %7.2f %8.1f %8.1f %6.2f" "$m" \
        "$(get pp128_cpu)" "$(awk -v a="$(get pp128_cpu)" -v b="$bpp1" 'BEGIN{print a/b}')" \
        "$pk" "$(get tg64_cpu)" \
        "$(awk -v a="$(get tg64_cpu)" -v b="$btg1" 'BEGIN{print a/b}')" "$(get agg1_cpu)" \
        "$(get agg8_cpu)" "$(awk -v a="$(get agg8_cpu)" -v b="$(get agg1_cpu)" 'BEGIN{print a/b}')")")
    fi
    bw=$(get bandwidth_gbs); wb=$(get weight_bytes)
    if [ "$t" = 1 ]; then bpp=$bpp1; btg=$btg1; blim=$blim1; else bpp=$bpp2; btg=$btg2; blim=$blim2; fi
    awk -v m="$m" -v t="$t" -v pp="$pp" -v tg="$tg" -v a1="$a1" -v a4="$a4" -v a8="$a8" \
        -v bw="$bw" -v wb="$wb" -v bpp="$bpp" -v btg="$btg" -v blim="$blim" 'BEGIN {
      limit = bw * 1e9 / wb;   # tokens/s if every weight byte is read once per token
      printf "%-9s %2d %9.1f %7.2f %8.1f %7.2f %8.1f %8.1f %8.1f %6.2f %7.1f %5.0f%% %5.0f%%\n",
        m, t, pp, pp / bpp, tg, tg / btg, a1, a4, a8, a8 / a1, bw, 100 * tg / limit, blim }'
  done
done
echo
echo "1 thread, per CPU-second of this process (time stolen by other processes left out):"
echo "cpu: $CPU_LINE; one core's float multiply-add peak: $PEAK GFLOP/s"
printf "%-9s %9s %7s %7s %8s %7s %8s %8s %6s\n" model pp128 "x llama" "%peak" tg64 "x llama" \
  agg1 agg8 "8/1"
for r in "${CPU_ROWS[@]}"; do echo "$r"; done
echo "x llama = ratio to llama.cpp's median (default CPU build, same shape); 8/1 = aggregate"
echo "tokens/s of 8 sequences over 1; %limit = generation / (bandwidth / weight bytes per token),"
echo "bandwidth probed now (a loaded machine lowers it); llama = llama.cpp's %limit on its machine."
echo "%peak (F32 models; the quantized ones run integer products) = the prompt's matrix-product"
echo "FLOPs per CPU-second over the core's float multiply-add peak: llama.cpp's"
echo "baseline CPU (family 26, Zen 5) has two 512-bit FMA pipes, Zen 4 (family 25) the FLOPs of one."
[ -z "${GF_BENCH_DIR:-}" ] && rm -rf "$DIR"
exit 0
