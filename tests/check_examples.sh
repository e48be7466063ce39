#!/usr/bin/env bash
# check_examples.sh BUILD_DIR - end-to-end check of the example programs.
#
# Runs BUILD_DIR/examples/parallel_checksums and BUILD_DIR/examples/parallel_gzip (it builds
# nothing) and checks every row they print against the reference tools:
#   - parallel_checksums on a small tree made here (awkward names, empty file, 5 MiB file, no
#     trailing newline, symbolic links and a FIFO that must be skipped) with several worker
#     counts, and on a big real tree ($RX_CHECK_BIG_DIR, default /usr/include, ~8000 files) with
#     -j 2; each row against sha256sum, wc -l and stat -c %s;
#   - parallel_gzip on the small tree; each row against `gzip -c FILE | wc -c` and stat -c %s;
#   - exit statuses: 0 all ok, 1 some files failed, 2 usage/setup error; an empty tree.
# The expected tables are built in the examples' order (paths sorted in byte order) and format
# (paths with '\' or a newline escaped as sha256sum escapes them, so every row is one line); rows
# are matched by path, so a missing, extra or changed row is reported as such, and their order is
# checked too.
#
# The unreadable-file case (a file with mode 000 must give `ERROR  open: ...` and exit status 1)
# runs only where mode 000 stops reads: not as root, whose CAP_DAC_OVERRIDE reads it anyway (then
# the file is simply expected to hash like any other, and the script says the case was skipped).
#
# Every row or status checked counts as one check; the script prints each failure and ends with
# "check_examples: N passed, M failed", exiting non-zero if M > 0.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_examples "${1:-}"
checksums=$build/examples/parallel_checksums
gzipper=$build/examples/parallel_gzip
big_dir=${RX_CHECK_BIG_DIR:-/usr/include}
rx_need "$checksums" "$gzipper"
# The unreadable-file case leaves a mode-000 file: make the tree removable.
rx_test_on_exit() { chmod -R u+rwx -- "$tmp" 2>/dev/null || true; }
trap 'echo "check_examples: command failed at line $LINENO (exit $?)" >&2' ERR

# expect_status NAME WANT GOT
expect_status() {
    if [[ $3 == "$2" ]]; then
        pass
    else
        fail "$1: exit status $3, want $2"
    fi
}

# escape_path PATH: PATH as sha256sum writes it; sets esc_prefix ("\" or "") and esc_path.
escape_path() {
    local p=$1
    if [[ $p == *[$'\\\n']* ]]; then
        esc_prefix=\\
        p=${p//\\/\\\\}
        p=${p//$'\n'/\\n}
    else
        esc_prefix=
    fi
    esc_path=$p
}

# list_files DIR OUT: NUL-separated regular files under DIR that we may read, in byte order -
# the examples' task order (find -type f, like nftw with FTW_PHYS, follows no symbolic link).
list_files() {
    find "$1" -type f -readable -print0 | sort -z >"$2"
}

# count_files LIST: number of entries in a NUL-separated list.
count_files() {
    tr -cd '\0' <"$1" | wc -c
}

# expected_checksums DIR OUT: the table parallel_checksums must print for DIR.
expected_checksums() {
    local dir=$1 out=$2 list=$tmp/exp.list n
    list_files "$dir" "$list"
    n=$(count_files "$list")
    if ((n == 0)); then
        : >"$out"
        return
    fi
    xargs -0 -r sha256sum -- <"$list" >"$tmp/exp.sha"
    xargs -0 -r stat -c %s -- <"$list" >"$tmp/exp.size"
    # wc quotes names that need it, so each file is one line; drop the "total" line.
    wc -l --files0-from="$list" | awk -v n="$n" 'NR <= n { print $1 }' >"$tmp/exp.lines"
    awk -v lines_file="$tmp/exp.lines" -v size_file="$tmp/exp.size" '
        {
            esc = ""; row = $0
            if (substr(row, 1, 1) == "\\") { esc = "\\"; row = substr(row, 2) }
            sha = substr(row, 1, 64); path = substr(row, 67)
            if ((getline lines < lines_file) <= 0 || (getline size < size_file) <= 0) {
                print "check_examples: wc/stat gave fewer rows than sha256sum" > "/dev/stderr"
                exit 1
            }
            print esc sha "  " lines "  " size "  " path
        }' "$tmp/exp.sha" >"$out"
    if [[ $(wc -l <"$out") -ne $n ]]; then
        echo "check_examples: expected table for $dir has $(wc -l <"$out") rows, want $n" >&2
        exit 1
    fi
}

# expected_gzip DIR OUT: the table parallel_gzip must print for DIR (one gzip per file: small
# trees only).
expected_gzip() {
    local dir=$1 out=$2 list=$tmp/exp.list f compressed size
    list_files "$dir" "$list"
    : >"$out"
    while IFS= read -r -d '' f; do
        compressed=$(gzip -c -- "$f" | wc -c)
        size=$(stat -c %s -- "$f")
        escape_path "$f"
        printf '%s%s  %s  %s\n' "$esc_prefix" "$compressed" "$size" "$esc_path" >>"$out"
    done <"$list"
}

# compare_tables NAME N_FIELDS EXPECTED ACTUAL: match rows by path (what follows the first
# N_FIELDS fields, each ended by two spaces); one check per expected row (present and equal) and
# one for the order of rows; a surplus row is one more failure. Prints the first 20 failures.
compare_tables() {
    local name=$1 counts ok bad
    counts=$(awk -v name="$name" -v nf="$2" '
        function key(row,    i, p) {
            for (i = 0; i < nf; i++) {
                p = index(row, "  ")
                if (p == 0)
                    return "(malformed) " row
                row = substr(row, p + 2)
            }
            return row
        }
        function report(what, w, g) {
            if (++shown <= 20)
                printf "FAIL: %s: %s\n  want: %s\n  got:  %s\n", name, what, w, g > "/dev/stderr"
        }
        FILENAME == ARGV[1] { k = key($0); want[k] = $0; pos[k] = FNR; order[FNR] = k; n = FNR; next }
        {
            k = key($0)
            if (!(k in want)) { bad++; report("surplus row " FNR, "(none)", $0); next }
            if (k in seen) { bad++; report("repeated row " FNR, "(once)", $0); next }
            seen[k] = 1
            if ($0 == want[k]) ok++
            else { bad++; report("row " FNR " differs", want[k], $0) }
            if (pos[k] < last_pos && !out_of_order) {
                out_of_order = 1
                report("row " FNR " out of order", "after expected row " last_pos, $0)
            }
            last_pos = pos[k]
        }
        END {
            for (i = 1; i <= n; i++)
                if (!(order[i] in seen)) { bad++; report("missing row " i, want[order[i]], "(none)") }
            if (out_of_order) bad++; else ok++
            print ok + 0, bad + 0
        }' "$3" "$4")
    read -r ok bad <<<"$counts"
    passed=$((passed + ok))
    failed=$((failed + bad))
    if ((bad > 0)); then
        printf 'FAIL: %s: %d of %d checks wrong\n' "$name" "$bad" "$((ok + bad))"
    else
        printf 'ok: %s: %d rows\n' "$name" "$((ok - 1))"
    fi
}

# run OUT ERR CMD...: run CMD with stdout to OUT and stderr to ERR; sets rc.
run() {
    local out=$1 err=$2
    shift 2
    rc=0
    "$@" >"$out" 2>"$err" || rc=$?
}

# expect_errors NAME ERRFILE MESSAGE_PREFIX: for each unreadable file of the small tree, stderr
# must hold "ERROR  <message>  <path>" with a message starting with MESSAGE_PREFIX.
expect_errors() {
    local name=$1 errfile=$2 prefix=$3 f
    while IFS= read -r -d '' f; do
        escape_path "$f"
        if awk -v prefix="ERROR  $prefix" -v suffix="  $esc_path" '
                index($0, prefix) == 1 && substr($0, length($0) - length(suffix) + 1) == suffix \
                    { found = 1 }
                END { exit !found }' "$errfile"; then
            pass
        else
            fail "$name: no 'ERROR  $prefix...  $esc_path' line on stderr"
        fi
    done <"$tmp/unreadable.list"
}

# ---------------------------------------------------------------------------------------------
# The small tree.
# ---------------------------------------------------------------------------------------------
tree=$tmp/tree
mkdir -p "$tree/sub/deeper" "$tree/dir with space"
printf 'one\ntwo\nthree\n' >"$tree/plain.txt"
printf 'a b\n' >"$tree/with space.txt"
printf 'x\n' >"$tree/dir with space/two  spaces  .txt"
printf 'q\n' >"$tree/quote\"d 'single'.txt"
printf 'l1\nl2\n' >"$tree/new"$'\n'"line.txt"
printf 'b\n' >"$tree/back\\slash.txt"
printf 'both\n' >"$tree/back\\slash and"$'\n'"newline"
printf 'd\n' >"$tree/-leading-dash.txt"
# shellcheck disable=SC2016 # shell syntax in a name, literally, on purpose
printf '$HOME `id`\n' >"$tree/"'dollar$HOME `id` $(id);.txt'
printf 'brace\n' >"$tree/brace{}.txt"
printf 'glob\n' >"$tree/star*?[x].txt"
printf 'u\n' >"$tree/ünïcödé.txt"
printf 'tab\n' >"$tree/tab"$'\t'"name.txt"
printf 'gz\n' >"$tree/already.gz"
: >"$tree/empty"
printf 'no trailing newline' >"$tree/no-newline.txt"
printf '\n\n\n' >"$tree/only-newlines"
# 5 MiB, compressible, many lines; then 5 MiB of random bytes (newlines at random places).
(yes 'the quick brown fox jumps over the lazy dog' || true) | head -c 5242880 >"$tree/sub/big.txt"
head -c 5242880 /dev/urandom >"$tree/sub/deeper/random.bin"
printf 'deep\n' >"$tree/sub/deeper/deep.txt"
ln -s plain.txt "$tree/link-to-plain"  # skipped: symbolic link
ln -s nowhere "$tree/dangling-link"    # skipped: symbolic link
ln -s sub "$tree/link-to-sub"          # not followed
mkfifo "$tree/fifo"                    # skipped: not a regular file (would block a reader)
printf 'secret\n' >"$tree/unreadable.txt"
chmod 000 "$tree/unreadable.txt"

find "$tree" -type f ! -readable -print0 | sort -z >"$tmp/unreadable.list"
n_unreadable=$(count_files "$tmp/unreadable.list")
if ((n_unreadable == 0)); then
    echo "note: mode 000 does not stop reads here (root?): unreadable-file case skipped"
    want_small=0
else
    want_small=1
fi

expected_checksums "$tree" "$tmp/small.want"

# ---------------------------------------------------------------------------------------------
# parallel_checksums on the small tree, with several worker counts (1 = sequential order,
# more workers than files, default).
# ---------------------------------------------------------------------------------------------
for jobs in 1 2 3 64 0; do
    name="parallel_checksums -j $jobs small tree"
    run "$tmp/small.out" "$tmp/small.err" "$checksums" -j "$jobs" "$tree"
    expect_status "$name" "$want_small" "$rc"
    compare_tables "$name" 3 "$tmp/small.want" "$tmp/small.out"
    expect_errors "$name" "$tmp/small.err" "open: "
    if [[ $jobs == 2 ]]; then
        sed 's/^/  stderr: /' "$tmp/small.err"
    fi
done

# ---------------------------------------------------------------------------------------------
# parallel_gzip on the small tree.
# ---------------------------------------------------------------------------------------------
expected_gzip "$tree" "$tmp/gzip.want"
for jobs in 1 2; do
    name="parallel_gzip -j $jobs small tree"
    run "$tmp/gzip.out" "$tmp/gzip.err" "$gzipper" -j "$jobs" "$tree"
    expect_status "$name" "$want_small" "$rc"
    compare_tables "$name" 2 "$tmp/gzip.want" "$tmp/gzip.out"
    expect_errors "$name" "$tmp/gzip.err" ""
    if [[ $jobs == 2 ]]; then
        sed 's/^/  stderr: /' "$tmp/gzip.err"
    fi
done

# ---------------------------------------------------------------------------------------------
# Empty tree and usage errors.
# ---------------------------------------------------------------------------------------------
mkdir "$tmp/empty-tree"
for prog in "$checksums" "$gzipper"; do
    base=${prog##*/}
    run "$tmp/e.out" "$tmp/e.err" "$prog" -j 2 "$tmp/empty-tree"
    expect_status "$base empty tree" 0 "$rc"
    if [[ -s $tmp/e.out ]]; then
        fail "$base empty tree: printed rows"
    else
        pass
    fi
    for bad_args in "-j x" "-j -1" "-j 99999" "-j" "-q" "$tmp/no-such-dir" "$tree $tree"; do
        # shellcheck disable=SC2086 # split on purpose
        run "$tmp/e.out" "$tmp/e.err" "$prog" $bad_args
        expect_status "$base $bad_args" 2 "$rc"
    done
done
echo "ok: empty tree and usage errors"

# ---------------------------------------------------------------------------------------------
# parallel_checksums on the big real tree, -j 2.
# ---------------------------------------------------------------------------------------------
if [[ -d $big_dir ]]; then
    name="parallel_checksums -j 2 $big_dir"
    expected_checksums "$big_dir" "$tmp/big.want"
    n_big_unreadable=$(find "$big_dir" -type f ! -readable | wc -l)
    run "$tmp/big.out" "$tmp/big.err" "$checksums" -j 2 "$big_dir"
    if ((n_big_unreadable == 0)); then
        expect_status "$name" 0 "$rc"
    else
        expect_status "$name" 1 "$rc"
    fi
    compare_tables "$name" 3 "$tmp/big.want" "$tmp/big.out"
    sed 's/^/  stderr: /' "$tmp/big.err" | tail -n 5
else
    echo "note: $big_dir is not a directory: big-tree case skipped"
fi

rx_test_end || exit 1
