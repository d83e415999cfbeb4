#!/bin/sh
# calib.sh - `d2moe calibrate`: a small run writes a profile that loads; bad
# options exit 2; a read-only or full disk gives one clear line and leaves no
# file; SIGTERM mid-run leaves no temporary file; --host-stops reports the
# host's share of the CPUs in the profile.  Rates are not asserted.
. "${D2_SRCDIR:-.}/tests/lib.sh"

SMALL="--file-size 8Mi --max-read 1Mi --io-bytes 1Mi --min-reps 3 --max-reps 8 --mem-size 4Mi"
mkdir -p "$TMP/d"
# shellcheck disable=SC2086
"$D2MOE" calibrate -o "$TMP/host.ini" --dir "$TMP/d" $SMALL > "$TMP/out" 2> "$TMP/err"; ok $? "small calibration run"
[ ! -s "$TMP/err" ]; ok $? "nothing on stderr"
grep -q '^kind *= measured ' "$TMP/host.ini"; ok $? "profile says kind = measured"
grep -Eq '^# .*page cache bypassed with (O_DIRECT|POSIX_FADV_DONTNEED)' "$TMP/host.ini"; ok $? "profile names the cache bypass"
"$D2MOE" show device "$TMP/host.ini" > "$TMP/show" 2>&1; ok $? "d2moe show device loads the profile"
grep -Eq '^unified += true ' "$TMP/show"; ok $? "unified = true"
awk '$1 == "flash_bw" && $3 > 0 { f = 1 } END { exit !f }' "$TMP/show"; ok $? "flash_bw > 0"
awk '$1 == "fp16_flops" && $3 > 0 { f = 1 } END { exit !f }' "$TMP/show"; ok $? "fp16_flops > 0"
awk '$1 == "dequant_rate" && $3 >= 1e15 { f = 1 } END { exit !f }' "$TMP/show"; ok $? "dequant_rate >= 1e15: no FP16 copy (the kernels read packed codes)"
awk '$1 == "kernel_overhead_ns" && $3 == 0 { f = 1 } END { exit !f }' "$TMP/show"; ok $? "kernel_overhead_ns = 0: the fitted intercept is recorded, not used"
mem=$(awk '$1 == "mem_bytes" { print $3 }' "$TMP/show")
[ "$mem" -gt 0 ] 2>/dev/null; ok $? "mem_bytes from the machine ($mem)"
grep -Eq '^# +SwiGLU epilogue .*per token: [1-9][0-9]* ns' "$TMP/host.ini"; ok $? "the SwiGLU epilogue is measured and named in the profile"
for k in swiglu_gu_rate_l1 swiglu_gu_rate_l2 swiglu_gu_rate_l3 swiglu_down_rate_l1 swiglu_down_rate_l2 swiglu_down_rate_l3 swiglu_epilogue_rate; do
    awk -v k=$k '$1 == k && $3 > 0 { f = 1 } END { exit !f }' "$TMP/show"; ok $? "$k > 0 (the SwiGLU calls as execute makes them)"
done
grep -Eq '^# +level 3 down 1\.\.3: a = -?[0-9]+ ns, b = [0-9]+ ns/token; T=1 ' "$TMP/host.ini"; ok $? "the per-level gate/up and down points are in the profile"
# the interference step times the reader's reads too: during the passes and
# while the compute CPU spins; the value is the profile's device parameter
y=$(awk '$1 == "read_interference" { print $3 }' "$TMP/show")
grep -Eq "^#   in 20 blocks of each, wall time: read_interference = [0-9]+\.[0-9]{4}\.\$" "$TMP/host.ini" &&
    awk -v y="$y" 'BEGIN { exit !(y != "" && y >= 0) }'; ok $? "read_interference measured and in the profile ($y)"
awk -v y="$y" '/^# Read interference: those reads took [0-9]+ ns during the passes and [0-9]+ ns while the compute$/ {
        a = $7; b = $13; e = a / b - 1; if (e < 0) e = 0; f = (y - e < 1e-3 && e - y < 1e-3) }
    END { exit !f }' "$TMP/host.ini"; ok $? "read_interference = max(0, during / spinning - 1) of the profile's medians"
grep -Eq '^read interference: a read takes [0-9.]+ us while the compute CPU spins, [0-9.]+ us during those passes \(medians of [1-9][0-9]* and [1-9][0-9]* reads' "$TMP/out"
ok $? "calibrate prints both read medians with their counts"
grep -Eq '^# clock_mono_read_ns = [0-9.]+$' "$TMP/host.ini" && grep -Eq '^# clock_thread_cpu_read_ns = [0-9.]+$' "$TMP/host.ini"; ok $? "the clock read costs are in the profile"
grep -Eq '^#   Stalls \(reported, not modelled; left out of the means\): [0-9]+ of [0-9]+ reads took more than 10x their$' "$TMP/host.ini"; ok $? "the storage stalls are in the profile"
# the fit is of each size's mean (stalls left out): the table's fit_ns column
# is flash_lat_ns + size / flash_bw, and the profile says which statistic
grep -q '^#   reads landing in turn in a pool of execute.s kind of memory; mean without the stalls per size; fit' "$TMP/host.ini"
ok $? "the profile names the fitted statistic (the mean without the stalls)"
awk '/^flash_bw / { bw = $3 } /^flash_lat_ns / { lat = $3 }
     /^#   +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+$/ && NF == 7 { n++; s[n] = $2; m[n] = $4; f[n] = $7; md[n] = $3 }
     END { if (n < 2) exit 1; for (i = 1; i <= n; i++) { d = lat + s[i] / bw * 1e9 - f[i]; if (d < -1 || d > 1) exit 1
                                                            if (m[i] <= 0) exit 1 }
           exit 0 }' "$TMP/host.ini"
ok $? "the storage table has median_ns and mean_ns, and fit_ns = flash_lat_ns + size / flash_bw"
[ -z "$(ls -A "$TMP/d")" ]; ok $? "no temporary file left in --dir"
[ "$(ls "$TMP" | grep -c 'host.ini.tmp')" -eq 0 ]; ok $? "no temporary profile left"

# --read-file: an existing file is read in place of the temporary one (left
# unchanged); --fit-stat median fits the medians
head -c 4194304 /dev/urandom > "$TMP/data.bin"
cksum < "$TMP/data.bin" > "$TMP/data.sum0"
# shellcheck disable=SC2086
"$D2MOE" calibrate -o "$TMP/rf.ini" --dir "$TMP/d" $SMALL --read-file "$TMP/data.bin" --fit-stat median --no-kernels > "$TMP/rfout" 2>&1
ok $? "calibrate --read-file FILE --fit-stat median runs"
grep -q "^# Storage: the existing file $TMP/data.bin (4194304 bytes, --read-file); page cache bypassed with" "$TMP/rf.ini"
ok $? "the profile names the file read"
grep -q '; median per size; fit' "$TMP/rf.ini" && grep -q '^storage fit (median per size)' "$TMP/rfout"; ok $? "--fit-stat median: the medians fitted, and said so"
cksum < "$TMP/data.bin" | cmp -s - "$TMP/data.sum0" && [ -z "$(ls -A "$TMP/d")" ]; ok $? "--read-file: the file unchanged, nothing left in --dir"
expect 2 "--fit-stat mode: expected mean or median" "bad --fit-stat: exit 2" -- "$D2MOE" calibrate -o "$TMP/x.ini" --fit-stat mode
expect 2 "--read-file .*nothere.bin: No such file or directory" "missing --read-file: exit 2" -- "$D2MOE" calibrate -o "$TMP/x.ini" --read-file "$TMP/nothere.bin"
expect 2 "--read-file .*: not a regular file" "--read-file a folder: exit 2" -- "$D2MOE" calibrate -o "$TMP/x.ini" --read-file "$TMP/d"
expect 2 "data.bin: --read-file: 4194304 bytes, less than twice the largest read" "--read-file smaller than twice the reads: exit 2" -- \
    "$D2MOE" calibrate -o "$TMP/x.ini" --dir "$TMP/d" --read-file "$TMP/data.bin" --max-read 4Mi --no-kernels
expect 2 "data.bin" "-o over the --read-file refused: exit 2" -- "$D2MOE" calibrate -o "$TMP/data.bin" --read-file "$TMP/data.bin" --no-kernels
cksum < "$TMP/data.bin" | cmp -s - "$TMP/data.sum0"; ok $? "the file read is unchanged after the refusals"
expect 2 "--file-size 12x" "bad size: exit 2, one line" -- "$D2MOE" calibrate -o "$TMP/x.ini" --file-size 12x
expect 2 "at least twice the largest read" "file smaller than the reads: exit 2" -- \
    "$D2MOE" calibrate -o "$TMP/x.ini" --dir "$TMP/d" --file-size 1Mi --max-read 1Mi
expect 2 "unknown option" "unknown option: exit 2" -- "$D2MOE" calibrate --frob
expect 2 "--size-step 1: expected a factor 1.05..16" "size step without progress: exit 2" -- "$D2MOE" calibrate -o "$TMP/x.ini" --size-step 1
expect 2 "at most 40: raise --size-step" "too many read sizes: exit 2, before any file" -- "$D2MOE" calibrate -o "$TMP/x.ini" --dir "$TMP/d" --size-step 1.05
# bad paths exited 1 (a --dir found when the file was created, after the
# options); the argument's fault: exit 2, before measuring
expect 2 "--dir .*nowhere: No such file or directory" "missing --dir: exit 2, one line" -- "$D2MOE" calibrate -o "$TMP/x.ini" --dir "$TMP/nowhere" $SMALL
: > "$TMP/afile"
expect 2 "--dir .*afile: not a directory" "--dir FILE: exit 2" -- "$D2MOE" calibrate -o "$TMP/x.ini" --dir "$TMP/afile" $SMALL
expect 2 "--dir: empty path" "--dir '': exit 2" -- "$D2MOE" calibrate -o "$TMP/x.ini" --dir '' $SMALL
expect 2 "nodir/x.ini: cannot create the profile: No such file or directory" "-o into a missing folder: exit 2" -- "$D2MOE" calibrate -o "$TMP/nodir/x.ini" $SMALL
expect 2 "afile/x.ini: cannot create the profile: Not a directory" "-o under a file: exit 2" -- "$D2MOE" calibrate -o "$TMP/afile/x.ini" $SMALL
[ ! -e "$TMP/x.ini" ] && [ ! -e "$TMP/nodir" ]; ok $? "nothing written by those"
[ ! -e "$TMP/x.ini" ]; ok $? "no profile after the errors"

# A read-only and a full file system, each in a private mount namespace
# (needs root and unshare; SKIP otherwise).
if unshare -m true 2>/dev/null; then
    mkdir -p "$TMP/ro"
    err=$(unshare -m sh -c "mount --bind -o ro '$TMP/ro' '$TMP/ro' && exec '$D2MOE' calibrate -o '$TMP/ro/host.ini' --dir '$TMP/ro' $SMALL" 2>&1 >/dev/null)
    st=$?
    [ $st -eq 1 ] && printf '%s' "$err" | grep -q 'read-only file system' && [ "$(printf '%s\n' "$err" | grep -c '')" -eq 1 ]
    ok $? "read-only --dir: exit 1, one line ($err)"
    [ -z "$(ls -A "$TMP/ro")" ]; ok $? "read-only: nothing left"
    err=$(unshare -m sh -c "mount --bind -o ro '$TMP/ro' '$TMP/ro' && exec '$D2MOE' calibrate -o '$TMP/ro/host.ini' --dir '$TMP/d' $SMALL" 2>&1 >/dev/null)
    st=$?
    [ $st -eq 1 ] && printf '%s' "$err" | grep -q 'read-only file system'; ok $? "read-only output place: exit 1 ($err)"
    [ -z "$(ls -A "$TMP/ro")" ]; ok $? "read-only output: no partial profile"
    mkdir -p "$TMP/full"
    err=$(unshare -m sh -c "mount -t tmpfs -o size=2m tmpfs '$TMP/full' && exec '$D2MOE' calibrate -o '$TMP/full/host.ini' --dir '$TMP/full' $SMALL" 2>&1 >/dev/null)
    st=$?
    [ $st -eq 1 ] && printf '%s' "$err" | grep -q 'no space left'; ok $? "full disk: exit 1 ($err)"
    [ -z "$(ls -A "$TMP/full")" ]; ok $? "full disk: nothing left (and the tmpfs is gone with its namespace)"
else
    skip "read-only --dir (no unshare -m)"; skip "read-only: nothing left"
    skip "read-only output"; skip "read-only output: no partial profile"
    skip "full disk (no unshare -m)"; skip "full disk: nothing left"
fi
# A file size limit makes the data file's writes fail like a full disk.
err=$(sh -c "ulimit -f 2048; exec '$D2MOE' calibrate -o '$TMP/f.ini' --dir '$TMP/d' $SMALL" 2>&1 >/dev/null)
st=$?
[ $st -eq 1 ] && printf '%s' "$err" | grep -q 'file size limit'; ok $? "file size limit: exit 1, clear reason ($err)"
[ -z "$(ls -A "$TMP/d")" ] && [ ! -e "$TMP/f.ini" ]; ok $? "file size limit: nothing left"

# SIGTERM while measuring: the temporary file (open, nameless) goes with the
# process.  Large enough to be still running when the signal comes.
"$D2MOE" calibrate -o "$TMP/k.ini" --dir "$TMP/d" --file-size 64Mi --max-read 4Mi --io-bytes 512Mi \
    --min-reps 50 --max-reps 2000 > "$TMP/kout" 2>&1 &
pid=$!
seen=1
i=0
while [ $i -lt 1200 ] && kill -0 $pid 2> /dev/null; do # up to a minute: a loaded machine is slow to start
    if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$TMP/d/.*(deleted)"; then seen=0; break; fi
    sleep 0.05; i=$((i + 1))
done
ok $seen "while measuring, the process holds a nameless file in --dir"
kill -TERM $pid 2>/dev/null
wait $pid; st=$?
[ $st -eq 143 ]; ok $? "SIGTERM ends calibrate (status $st)"
[ -z "$(ls -A "$TMP/d")" ] && [ ! -e "$TMP/k.ini" ]; ok $? "after SIGTERM: no temporary file, no profile"
# the host-stops step: options checked; where two CPUs and real-time
# priority exist, both phases printed and recorded (values not asserted)
expect 2 "--host-stops 0.05" "host stops shorter than 0.1 s: exit 2" -- "$D2MOE" calibrate -o "$TMP/x.ini" --host-stops 0.05
expect 2 "not with --no-kernels" "host stops without kernels: exit 2" -- "$D2MOE" calibrate -o "$TMP/x.ini" --dir "$TMP/d" $SMALL --no-kernels --host-stops 0.2
st=1
if [ "$(nproc)" -ge 2 ]; then
    # shellcheck disable=SC2086
    "$D2MOE" calibrate -o "$TMP/hs.ini" --dir "$TMP/d" $SMALL --host-stops 0.2 > "$TMP/hs.out" 2> "$TMP/hs.err"; st=$?
fi
if [ $st -ne 0 ] && { [ "$(nproc)" -lt 2 ] || grep -q 'SCHED_FIFO) refused' "$TMP/hs.err"; }; then
    for i in 1 2 3 4 5 6; do skip "host stops need two CPUs and real-time priority"; done
else
    [ $st -eq 0 ]; ok $? "calibrate --host-stops 0.2"
    grep -Eq '^host stops, idle   : 0\.[0-9]+ s, the host took the compute CPU [0-9.]+ ms' "$TMP/hs.out" &&
        grep -Eq '^host stops, reading: .*; [1-9][0-9]* reads of [0-9]+ bytes' "$TMP/hs.out"; ok $? "both phases printed, the reading one with its reads"
    for k in host_taken_compute_frac_idle host_taken_compute_frac_reading host_stopped_frac_idle host_stopped_frac_reading; do
        grep -Eq "^# $k = [01]\.[0-9]{4}\$" "$TMP/hs.ini"; ok $? "profile comment $k"
    done
fi
[ -z "$(ls -A "$TMP/d")" ]; ok $? "no temporary file left in --dir after the host-stops run"

done_testing
