#!/usr/bin/env bash
# dlk-glove end to end on the tool's golden corpus (tests/golden/glove):
#  1. vocab, cooccur, shuffle and fit as drop-in replacements of vocab_count, cooccur,
#     shuffle and glove, with the flags, stdin/stdout and file names the golden files were
#     made with (see their README): byte-identical vocab.txt, cooccurrence.bin,
#     cooccurrence.shuf.bin, vectors.000.bin and vectors.003.txt; the printed costs.
#  2. train: the whole pipeline; Ctrl-C (SIGINT) stops it with the last checkpoint
#     intact, --resume finishes from there; eval and neighbours run on the result.
# Usage: glove_tool.sh DLK_GLOVE SOURCE_DIR
set -u
bin=${1:?dlk-glove binary}
src=${2:?source dir}
gold=$src/tests/golden/glove
work=$(mktemp -d "${TMPDIR:-/tmp}/dlk_glove_tool_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
same() { if cmp -s "$1" "$2"; then ok "$3"; else bad "$3 ($1 differs from $2)"; fi; }

# ---- 1. the tool's four programs ----
"$bin" vocab -min-count 3 < "$gold/corpus.txt" > vocab.txt 2> vocab.log || bad "vocab exit status"
same vocab.txt "$gold/vocab.txt" "vocab -min-count 3 reproduces vocab.txt"
grep -q "Using vocabulary of size 1194" vocab.log && ok "vocab message" || bad "vocab message: $(cat vocab.log)"
"$bin" cooccur -window-size 5 < "$gold/corpus.txt" > cooccurrence.bin 2> cooccur.log || bad "cooccur exit status"
same cooccurrence.bin "$gold/cooccurrence.bin" "cooccur -window-size 5 reproduces cooccurrence.bin"
"$bin" shuffle -seed 7 < cooccurrence.bin > cooccurrence.shuf.bin 2> shuffle.log || bad "shuffle exit status"
same cooccurrence.shuf.bin "$gold/cooccurrence.shuf.bin" "shuffle -seed 7 reproduces cooccurrence.shuf.bin"
"$bin" fit -input-file cooccurrence.shuf.bin -vector-size 10 -threads 1 -iter 3 -eta 0.05 -alpha 0.75 \
  -x-max 100 -binary 2 -model 2 -seed 7 -checkpoint-every 1 -save-init-param 1 -device cpu 2> fit.log ||
  bad "fit exit status: $(tail -3 fit.log)"
same vectors.000.bin "$gold/vectors.000.bin" "fit -save-init-param 1 -seed 7 writes the tool's vectors.000.bin"
same vectors.003.txt "$gold/vectors.003.txt" "fit -checkpoint-every 1 writes the tool's vectors.003.txt"
same vectors.txt "$gold/vectors.003.txt" "final vectors.txt"
for e in 1 2 3; do
  want=$(sed -n "${e}p" "$gold/cost.txt")
  grep -q "$want" fit.log && ok "printed \"$want\"" || bad "no \"$want\" in fit.log"
done
[ -f vectors.bin ] && [ -f vectors.001.bin ] && ok "binary outputs" || bad "binary outputs missing"
# Resume through the tool's own flags: epochs 2..3 from vectors.001.bin and the gradsq.
"$bin" fit -input-file cooccurrence.shuf.bin -vector-size 10 -threads 1 -iter 2 -binary 1 -seed 7 \
  -save-file again -load-init-param 1 -init-param-file "$gold/vectors.001.bin" \
  -load-init-gradsq 1 -init-gradsq-file "$gold/gradsq.001.bin" -device cpu 2> again.log || bad "fit from init files"
grep -q "iter: 002, cost: 0.018418" again.log && ok "-load-init-param/-load-init-gradsq continue the run" ||
  bad "continued run: $(grep iter again.log)"
# A vocabulary that disagrees with the init file is refused with a message.
head -n 1000 vocab.txt > small_vocab.txt
if "$bin" fit -input-file cooccurrence.shuf.bin -vocab-file small_vocab.txt -vector-size 10 -iter 1 \
  -load-init-param 1 -init-param-file "$gold/vectors.001.bin" -device cpu 2> small.log; then
  bad "a vocab that disagrees was accepted"
else
  grep -q "DLK_ERR" small.log && ok "disagreeing vocab refused: $(tail -1 small.log | cut -c1-100)" || bad "no message"
fi
if "$bin" fit -input-file cooccurrence.shuf.bin -vector-size 11 -iter 1 -load-init-param 1 \
  -init-param-file "$gold/vectors.001.bin" -device cpu 2> size.log; then
  bad "an init file for another vector size was accepted"
else
  grep -q "disagrees" size.log && ok "init file of the wrong size refused" || bad "message: $(cat size.log)"
fi
"$bin" fit -input-file cooccurrence.shuf.bin -vector-size 10 -iter 1 -device cuda 2> cuda.log
rc=$?
if [ $rc -ne 0 ]; then
  grep -qi "cuda" cuda.log && ok "-device cuda without a GPU: a clear error" || bad "-device cuda message: $(cat cuda.log)"
else
  ok "-device cuda ran (a GPU is present)"
fi

# A full disk (/dev/full: every write fails with ENOSPC): each program says so, exit 1.
for prog in "vocab -min-count 3" "cooccur -window-size 5 -vocab-file $gold/vocab.txt"; do
  if "$bin" $prog < "$gold/corpus.txt" > /dev/full 2> full.log; then bad "$prog > /dev/full succeeded"; else
    grep -q "No space left" full.log && ok "$prog > /dev/full: $(tail -1 full.log | cut -c1-80)" || bad "$(cat full.log)"
  fi
done
if "$bin" shuffle -seed 3 < "$gold/cooccurrence.bin" > /dev/full 2> full.log; then bad "shuffle > /dev/full"; else
  grep -q "No space left" full.log && ok "shuffle > /dev/full fails cleanly" || bad "$(cat full.log)"
fi

# ---- 2. train, Ctrl-C, resume ----
"$bin" train "$gold/corpus.txt" --out run --device cpu --min-count 3 --window 5 --vector-size 50 --iter 100000 \
  --seed 7 --threads 2 2> train.log &
pid=$!
# Wait for 3 logged epochs: up to 2 minutes, since a sanitizer build on a loaded machine
# (ctest -j beside other tests) can take far longer than the usual second or two; stop
# waiting early if the run died.
for i in $(seq 1 600); do
  sleep 0.2
  [ -f run/cost.log ] && [ "$(wc -l < run/cost.log)" -ge 3 ] && break
  kill -0 $pid 2> /dev/null || break
done
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] && ok "SIGINT: exit status 130" || bad "SIGINT: exit status $rc ($(tail -2 train.log))"
done_epochs=$(wc -l < run/cost.log)
[ "$done_epochs" -ge 3 ] && [ -f run/checkpoint.dlk ] && ok "$done_epochs epochs logged, checkpoint kept" || bad "checkpoint after SIGINT"
[ ! -f run/checkpoint.dlk.tmp ] && ok "no temporary checkpoint left" || bad "checkpoint.dlk.tmp left behind"
target=$((done_epochs + 2))
"$bin" train "$gold/corpus.txt" --out run --device cpu --iter $target --threads 2 --resume 2> resume.log ||
  bad "resume: $(tail -3 resume.log)"
grep -q "resuming after epoch" resume.log && ok "resumed from the checkpoint" || bad "did not resume"
n=$(wc -l < run/cost.log)
[ "$n" -eq "$target" ] && ok "cost.log has $n epochs" || bad "cost.log has $n epochs, expected $target"
[ -f run/vectors.txt ] && [ "$(wc -l < run/vectors.txt)" -eq 1195 ] && ok "vectors.txt written" || bad "vectors.txt"
"$bin" eval --vocab-file run/vocab.txt --vectors-file run/vectors.txt --questions "$gold" --device cpu > eval.log 2>&1
if [ $? -ne 0 ]; then
  grep -q "cannot open" eval.log && ok "eval without the question files: clear error" || bad "eval: $(tail -2 eval.log)"
fi
"$bin" neighbours jesus --vocab-file run/vocab.txt --vectors-file run/vectors.txt -k 5 --device cpu > nb.log 2>&1 ||
  bad "neighbours: $(cat nb.log)"
[ "$(grep -c '^  ' nb.log)" -eq 5 ] && ok "neighbours of jesus: $(sed -n 2p nb.log | tr -s ' ')" || bad "neighbours: $(cat nb.log)"
exit $fail
