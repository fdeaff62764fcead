#!/usr/bin/env bash
# dlk-glove end to end on the tool's golden corpus (tests/golden/glove):
#  1. vocab, cooccur, shuffle and fit as drop-in replacements of vocab_count, cooccur,
#     shuffle and glove, with the flags, stdin/stdout and file names the golden files were
#     made with (see their README): byte-identical vocab.txt, cooccurrence.bin,
#     cooccurrence.shuf.bin, vectors.000.bin and vectors.003.txt; the printed costs.
#  2. train: the whole pipeline; Ctrl-C (SIGINT) stops it with the last checkpoint
#     intact, --resume finishes from there; eval and neighbours run on the result.
#  3. What a user types wrong: unknown and misspelled flags, out-of-range numbers, paths
#     that cannot work (all refused before any work, leaving nothing behind), a run that
#     would be overwritten or resumed with other settings, empty inputs, unknown words,
#     empty analogy groups; the progress line on a terminal.
# Usage: glove_tool.sh DLK_GLOVE SOURCE_DIR
set -u
bin=${1:?dlk-glove binary}
src=${2:?source dir}
gold=$src/tests/golden/glove
work=$(mktemp -d "${TMPDIR:-/tmp}/dlk_glove_tool_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail=0
# Under a sanitizer build: LeakSanitizer ignores pointers left on stacks and in registers,
# so a leak at exit is found whatever the optimisation level (at -O0 an exit() with live
# locals hides it). No effect without a sanitizer.
export LSAN_OPTIONS="use_stacks=0:use_registers=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
same() { if cmp -s "$1" "$2"; then ok "$3"; else bad "$3 ($1 differs from $2)"; fi; }

# ---- 1. the tool's four programs ----
"$bin" vocab -min-count 3 < "$gold/corpus.txt" > vocab.txt 2> vocab.log || bad "vocab exit status"
same vocab.txt "$gold/vocab.txt" "vocab -min-count 3 reproduces vocab.txt"
grep -q "Using vocabulary of size 1194" vocab.log && ok "vocab message" || bad "vocab message: $(cat vocab.log)"
# -device cpu: on a GPU cooccur counts in chunks, which write true sums instead of the tool's
# doubled record 0 (dlk_glove_cooccur_params.no_tool_quirks; checked below).
"$bin" cooccur -window-size 5 -device cpu < "$gold/corpus.txt" > cooccurrence.bin 2> cooccur.log ||
  bad "cooccur exit status"
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
  # The GPU's chunk counts: every record of the tool's file but record 0, which the tool's
  # merge counts twice (its phantom record) and the chunk method writes as the true sum.
  "$bin" cooccur -window-size 5 -device cuda < "$gold/corpus.txt" > cooc_cuda.bin 2> cooc_cuda.log ||
    bad "cooccur -device cuda: $(tail -1 cooc_cuda.log)"
  x=$(od -A n -t f8 -j 8 -N 8 cooc_cuda.bin) gx=$(od -A n -t f8 -j 8 -N 8 "$gold/cooccurrence.bin")
  if cmp -s -i 16 cooc_cuda.bin "$gold/cooccurrence.bin" && cmp -s -n 8 cooc_cuda.bin "$gold/cooccurrence.bin" &&
    awk -v x="$x" -v g="$gx" 'BEGIN { exit !(x * 2 == g) }'; then
    ok "cooccur -device cuda: the tool's records, record 0 the true sum ($x, the tool $gx)"
  else
    bad "cooccur -device cuda differs from cooccurrence.bin beyond record 0's true sum ($x, the tool $gx)"
  fi
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

# ---- 3. what a user types wrong ----
# Each of these fails with exit status 2 (command line) or 1, a message naming the fault
# ($2 is a fixed string the message must hold), before any work: no output folder and no
# "BUILDING VOCABULARY" / "TRAINING MODEL" in the log.
# fails: the same, for faults that only the work itself finds.
refused() { # refused WHAT WANT CMD...
  checked_failure 1 "$@"
}
fails() { # fails WHAT WANT CMD...
  checked_failure 0 "$@"
}
checked_failure() {
  local early=$1 what=$2 want=$3
  shift 3
  "$@" > refused.out 2> refused.log < /dev/null
  local rc=$?
  if [ $rc -eq 0 ]; then
    bad "$what: accepted (exit 0)"
  elif ! grep -qF -- "$want" refused.log; then
    bad "$what: exit $rc but no \"$want\" in: $(head -c 300 refused.log)"
  elif [ "$early" = 1 ] && grep -qE "BUILDING VOCABULARY|TRAINING MODEL|COUNTING|SHUFFLING" refused.log; then
    bad "$what: refused only after starting work: $(head -c 300 refused.log)"
  else
    ok "$what: $(grep -F -- "$want" refused.log | head -1 | cut -c1-110)"
  fi
}
C=$gold/corpus.txt
rm -rf xt d
refused "train, misspelled flags" "unknown flag --vector_size (did you mean --vector-size?" \
  "$bin" train "$C" --out xt --iters 2 --vector_size 7 --device cpu
grep -qF "unknown flag --iters (did you mean --iter?" refused.log && ok "every unknown flag named" ||
  bad "--iters not named: $(cat refused.log)"
refused "vocab -bogus" "unknown flag -bogus" "$bin" vocab -bogus 1
refused "cooccur -windowsize" "did you mean -window-size?" "$bin" cooccur -windowsize 5 -vocab-file "$gold/vocab.txt"
refused "shuffle -sed" "did you mean -seed?" "$bin" shuffle -sed 7
refused "fit -vector_siz" "did you mean -vector-size?" "$bin" fit -vector_siz 10 -input-file "$gold/cooccurrence.shuf.bin"
refused "eval --vocab-fle" "did you mean --vocab-file?" "$bin" eval --vocab-fle "$gold/vocab.txt"
refused "neighbours --kk" "did you mean --k?" "$bin" neighbours jesus --kk 3 --vocab-file "$gold/vocab.txt"
refused "train --vector-size 99999999999" "--vector-size 99999999999 is out of range" \
  "$bin" train "$C" --out xt --vector-size 99999999999
refused "fit -iter 99999999999" "-iter 99999999999 is out of range" timeout 60 "$bin" fit -iter 99999999999 \
  -input-file "$gold/cooccurrence.shuf.bin" -vocab-file "$gold/vocab.txt" -device cpu
refused "fit -iter 1e9" '-iter wants an integer, not "1e9"' "$bin" fit -iter 1e9
refused "shuffle -seed -1" "-seed -1 is out of range" "$bin" shuffle -seed -1
refused "train --x-max abc" "--x-max wants a number" "$bin" train "$C" --out xt --x-max abc
refused "train --vector-size 0" "--vector-size 0 is out of range" "$bin" train "$C" --out xt --vector-size 0
refused "train --x-max -1" "--x-max -1 is out of range" "$bin" train "$C" --out xt --x-max -1
refused "train --threads twice" "--threads is given twice" "$bin" train "$C" --out xt --threads 1 --threads 2
refused "train nosuch.txt" "nosuch.txt: No such file" "$bin" train nosuch.txt --out d
refused "train --out in a missing folder" "nonexistent" "$bin" train "$C" --out /nonexistent/run
refused "fit -save-file in a missing folder" "-save-file: folder /nonexistent/d" "$bin" fit \
  -input-file "$gold/cooccurrence.shuf.bin" -vocab-file "$gold/vocab.txt" -save-file /nonexistent/d/vec -iter 1 -device cpu
refused "fit -gradsq-file in a missing folder" "-gradsq-file: folder /nonexistent" "$bin" fit \
  -input-file "$gold/cooccurrence.shuf.bin" -vocab-file "$gold/vocab.txt" -gradsq-file /nonexistent/g -iter 1 -device cpu
refused "cooccur -vocab-file missing" "-vocab-file nosuch.txt" "$bin" cooccur -vocab-file nosuch.txt
refused "train --resume without a checkpoint" "holds no checkpoint" "$bin" train "$C" --out xt --resume
refused "train --resume --force" "one or the other" "$bin" train "$C" --out xt --resume --force
[ ! -e xt ] && [ ! -e d ] && ok "no output folder left by the refused runs" || bad "refused runs left $(ls -d xt d 2>&1)"
# A failure after the folder was made (no word is frequent enough): the folder goes again.
fails "train, empty vocabulary" "no word occurs at least min_count" "$bin" train "$C" --out xt --min-count 100000000 --device cpu
[ ! -e xt ] && ok "a run that failed before its first checkpoint leaves no folder" || bad "left: $(ls -la xt)"
: > empty.bin
refused "fit on an empty records file" "nothing to train on" "$bin" fit -input-file empty.bin -vocab-file "$gold/vocab.txt" -device cpu
printf 'a\nb\nc\n' > one_word_lines.txt
fails "train on a corpus without co-occurrences" "nothing to train on" \
  "$bin" train one_word_lines.txt --out xt --min-count 1 --device cpu --quiet
[ ! -e xt ] && ok "... and left no folder" || bad "left: $(ls -la xt)"
refused "neighbours of an unknown word" '"unknownword" is not in the vocabulary' \
  "$bin" neighbours unknownword jesus --vocab-file run/vocab.txt --vectors-file run/vectors.txt --device cpu

# A run is not overwritten without --force, and --resume continues only the same run.
cp run/checkpoint.dlk ckpt.before
cp run/cost.log cost.before
refused "train over an existing run" "--resume continues it, --force replaces it" \
  "$bin" train "$C" --out run --device cpu --iter 2 --min-count 3 --window 5
cmp -s run/checkpoint.dlk ckpt.before && cmp -s run/cost.log cost.before && ok "... and left it untouched" ||
  bad "the existing run was changed"
refused "--resume with another --vector-size" "--vector-size 60 (the run's: 50)" \
  "$bin" train "$C" --out run --device cpu --iter 30 --resume --vector-size 60
refused "--resume with another --min-count" "--min-count 4 (the run's: 3)" \
  "$bin" train "$C" --out run --device cpu --iter 30 --resume --min-count 4 --window 5
head -c 100000 "$C" > part.txt
refused "--resume with another corpus (size)" "corpus part.txt has 100000 bytes" \
  "$bin" train part.txt --out run --device cpu --iter 30 --resume
tr 'a' 'b' < "$C" > same_size.txt
refused "--resume with another corpus (bytes)" "is not the text the run was started with" \
  "$bin" train same_size.txt --out run --device cpu --iter 30 --resume
cmp -s run/checkpoint.dlk ckpt.before && ok "refused resumes left the checkpoint untouched" || bad "checkpoint changed"
"$bin" train "$C" --out run --device cpu --iter 2 --min-count 3 --window 5 --seed 7 --force --quiet 2> force.log ||
  bad "--force: $(tail -2 force.log)"
[ "$(wc -l < run/cost.log)" -eq 2 ] && grep -q "replacing the run" force.log && ok "--force replaced the run" ||
  bad "--force: cost.log has $(wc -l < run/cost.log) lines: $(cat force.log)"

# Analogy groups without a single answerable question print "-", not "nan%".
mkdir -p q
for f in capital-common-countries capital-world currency city-in-state family gram1-adjective-to-adverb \
  gram2-opposite gram3-comparative gram4-superlative gram5-present-participle gram6-nationality-adjective \
  gram7-past-tense gram8-plural gram9-plural-verbs; do
  echo "zzunknown yyunknown xxunknown wwunknown" > "q/$f.txt"
done
echo "he him they them" > q/family.txt
"$bin" eval --vocab-file run/vocab.txt --vectors-file run/vectors.txt --questions q --device cpu > eval2.log 2>&1 ||
  bad "eval with empty groups: $(tail -2 eval2.log)"
if grep -qi "nan" eval2.log; then bad "eval prints nan: $(grep -i nan eval2.log | head -2)"; else
  grep -q "ACCURACY TOP1: - (0/0" eval2.log && grep -q "Semantic accuracy: [0-9.]*%" eval2.log &&
    ok "empty analogy groups print \"-\"" || bad "eval output: $(cat eval2.log)"
fi

# On a terminal (a pty of 80 columns under script(1)): the progress line is redrawn in
# place and cleared, never wrapped, and every epoch's cost line stays on the screen.
if command -v script > /dev/null && command -v python3 > /dev/null; then
  script -qc "stty cols 80 rows 50; '$bin' train '$C' --out tty --device cpu --iter 4 --min-count 3 --window 5 --seed 7" \
    /dev/null > tty.raw 2>&1 < /dev/null
  python3 - tty.raw 80 > tty.screen << 'PY'
import sys
# A terminal of `cols` columns: printable bytes, \r, \n, \b and ESC[K; autowrap with the
# pending-wrap rule of xterm (a character in the last column wraps only at the next one).
data, cols = open(sys.argv[1], 'rb').read().decode('utf-8', 'replace'), int(sys.argv[2])
rows, r, c, pending, i = [[]], 0, 0, False, 0
def put(ch):
    global r, c, pending
    if pending:
        r, c, pending = r + 1, 0, False
    while len(rows) <= r: rows.append([])
    line = rows[r]
    while len(line) < c: line.append(' ')
    if c < len(line): line[c] = ch
    else: line.append(ch)
    if c == cols - 1: pending = True
    else: c += 1
while i < len(data):
    ch = data[i]
    if ch == '\r': c, pending = 0, False
    elif ch == '\n':
        r, pending = r + 1, False
        while len(rows) <= r: rows.append([])
    elif ch == '\b': c = max(0, c - 1)
    elif ch == '\x1b' and data[i + 1:i + 3] == '[K':
        del rows[r][c:]; i += 2
    elif ch >= ' ': put(ch)
    i += 1
for line in rows: print(''.join(line).rstrip())
PY
  n_cost=$(grep -c "^epoch 00[1-4] cost" tty.screen)
  n_bar=$(grep -c "\[[#.]" tty.screen)
  [ "$n_cost" -eq 4 ] && [ "$n_bar" -eq 0 ] && ok "terminal: 4 cost lines kept, no leftover progress bar" ||
    bad "terminal screen: $n_cost cost lines, $n_bar bar fragments:
$(cat tty.screen)"
else
  echo "skip: script(1) or python3 not found: terminal progress check"
fi
exit $fail
