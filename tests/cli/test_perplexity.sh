# test_perplexity.sh: `hswarm perplexity` on a small synthetic model against a computation of
# llama-perplexity's protocol from the PyTorch reference's logits (tests/engine/model_ref.py):
# chunks of --ctx tokens from a fresh context, BOS in front where the vocabulary adds one, the
# second half of each chunk scored; then --chunks, --json and the errors.
. "$(dirname "$0")/lib.bash"


expect_status 0 "$HSWARM" model synth --preset tiny-llama3 --type f32 --tokenizer spm \
  --corpus "$SRC/README.md" -o m.gguf
head -c 3000 "$SRC/README.md" > text.txt

expect_status 0 "$HSWARM" perplexity -m m.gguf -f text.txt --ctx 64 --json --threads 2
expect_json
n_tok=$(jq -r .n_tokens out.txt)
n_chunks=$(jq -r .n_chunks out.txt)
[ "$n_chunks" = $((n_tok / 64)) ] || fail "chunks: $n_chunks of $n_tok tokens"
[ "$(jq -r .n_scored out.txt)" = $((n_chunks * 31)) ] || fail "31 scored per chunk of 64"
[ "$n_chunks" -ge 4 ] || fail "the text is too short for the test ($n_chunks chunks)"

# three chunks against the same protocol from the reference's logits (f32 model, so the two
# agree closely)
expect_status 0 "$HSWARM" perplexity -m m.gguf -f text.txt --ctx 64 --chunks 3 --json
[ "$(jq -r .n_scored out.txt)" = 93 ] || fail "--chunks 3 scores 93 tokens"
ppl=$(jq -r .perplexity out.txt)
n_chunks=3

"$HSWARM" tokenize -m m.gguf --ids "$(cat text.txt)" > ids.txt || fail "tokenize"
/usr/bin/python3 - "$SRC/tests/engine/model_ref.py" m.gguf ids.txt "$n_chunks" "$ppl" <<'PY' || fail "perplexity differs from the reference's"
import math, subprocess, sys
import numpy as np
ref, model, ids_file, n_chunks, ppl = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
ids = open(ids_file).read().split()
bos = ids[0]  # the SPM vocabulary adds BOS, so the text's first id is BOS
nll = []
for c in range(n_chunks):
    chunk = ids[64 * c: 64 * c + 64]
    chunk[0] = bos
    subprocess.run(["/usr/bin/python3", ref, "logits", model, "lg.bin"] + chunk, check=True)
    lg = np.fromfile("lg.bin", dtype="<f4").reshape(64, -1).astype(np.float64)
    for j in range(32, 63):
        row = lg[j]
        m = row.max()
        nll.append(-(row[int(chunk[j + 1])] - m - math.log(np.exp(row - m).sum())))
want = math.exp(sum(nll) / len(nll))
print("hswarm %.6f, reference %.6f" % (ppl, want))
sys.exit(0 if abs(ppl - want) <= 1e-3 * want else 1)
PY

expect_status 0 "$HSWARM" perplexity -m m.gguf -f text.txt --ctx 64 --chunks 2
expect_in out.txt "perplexity "

# errors
expect_status 3 "$HSWARM" perplexity -m m.gguf -f text.txt --ctx 65536 --json
expect_json
expect_in err.txt "less than one chunk"
expect_status 3 "$HSWARM" perplexity -m m.gguf -f no/such/file
expect_in err.txt "no/such/file"
expect_status 2 "$HSWARM" perplexity -m m.gguf -f text.txt --ctx 2
expect_in err.txt "--ctx"
expect_status 2 "$HSWARM" perplexity -f text.txt
echo "test_perplexity: ok"
