#!/bin/sh
# profiles.sh - bad model and device profiles: file:line, the key, exit 2.
. "${D2_SRCDIR:-.}/tests/lib.sh"

good='[model]
name = t
layers = 2
hidden = 8
expert_ffn = 16
experts = 4
top_k = 2
heads = 2
kv_heads = 1
head_dim = 4
vocab = 10'
printf '%s\n' "$good" > "$TMP/good.ini"
"$D2MOE" show model "$TMP/good.ini" > /dev/null; ok $? "a good model profile"
printf '%s\ncolour = blue\n' "$good" > "$TMP/unknown.ini"
expect 2 "unknown.ini:12: colour: unknown key" "unknown key: file:line and key" -- "$D2MOE" show model "$TMP/unknown.ini"
printf '%s\n' "$good" | sed 's/top_k = 2/top_k = 100/' > "$TMP/range.ini"
expect 2 "range.ini:7: top_k: 100 is outside" "out-of-range value: file:line and key" -- "$D2MOE" show model "$TMP/range.ini"
printf '%s\n' "$good" | grep -v vocab > "$TMP/missing.ini"
expect 2 "missing.ini:[0-9]+: vocab: required key missing" "missing required key" -- "$D2MOE" show model "$TMP/missing.ini"
printf '%s\njust words\n' "$good" > "$TMP/malformed.ini"
expect 2 "malformed.ini:12: malformed line" "malformed line" -- "$D2MOE" show model "$TMP/malformed.ini"
printf '%s\n' "$good" | sed 's/hidden = 8/hidden = eight/' > "$TMP/type.ini"
expect 2 "type.ini:4: hidden: expected an integer" "wrong type" -- "$D2MOE" show model "$TMP/type.ini"
printf '[device]\nname = d\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = -5\nunified = true\n' > "$TMP/dev.ini"
expect 2 "dev.ini:8: flash_lat_ns: -5 is outside" "bad device value: file:line and key" -- "$D2MOE" show device "$TMP/dev.ini"
printf '[device]\nname = d\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = 5\nunified = maybe\n' > "$TMP/dev2.ini"
expect 2 "dev2.ini:9: unified: expected true/false" "bad device bool" -- "$D2MOE" show device "$TMP/dev2.ini"
printf '[device]\nname = d\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = 5\nunified = true\nswiglu_gu_rate_l2 = -3e10\n' > "$TMP/dev3.ini"
expect 2 "dev3.ini:10: swiglu_gu_rate_l2: -3e10 is outside" "negative SwiGLU rate: file:line and key" -- "$D2MOE" show device "$TMP/dev3.ini"
printf '[device]\nname = d\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = 5\nunified = true\nswiglu_epilogue_rate = fast\n' > "$TMP/dev4.ini"
expect 2 "dev4.ini:10: swiglu_epilogue_rate: " "non-numeric SwiGLU rate: file:line and key" -- "$D2MOE" show device "$TMP/dev4.ini"
printf '[device]\nname = d\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = 5\nunified = true\nswiglu_down_rate_l3 = 2.5e10x\n' > "$TMP/dev5.ini"
expect 2 "dev5.ini:10: swiglu_down_rate_l3: " "trailing garbage in a SwiGLU rate: file:line and key" -- "$D2MOE" show device "$TMP/dev5.ini"
printf '\000\001\002binary\377\n' > "$TMP/bin.ini"
expect 2 "bin.ini:1: binary data" "binary garbage" -- "$D2MOE" show model "$TMP/bin.ini"
: > "$TMP/empty.ini"
expect 2 "empty.ini: empty file: name: required key missing" "empty file: said so, no line 0" -- "$D2MOE" show model "$TMP/empty.ini"
expect 2 "empty.ini: empty file: name: required key missing" "empty device profile: said so, no line 0" -- "$D2MOE" show device "$TMP/empty.ini"
printf '[sweep]\n' > "$TMP/emptyspec.ini"; : > "$TMP/nullspec.ini"
expect 2 "nullspec.ini: empty file: name: required key missing" "empty sweep spec: said so, no line 0" -- "$D2MOE" sweep "$TMP/nullspec.ini" --db "$TMP/e.db"
expect 2 "emptyspec.ini:1: name: required key missing" "a spec of a bare [sweep]: line 1" -- "$D2MOE" sweep "$TMP/emptyspec.ini" --db "$TMP/e.db"
# an empty required name was accepted: a device stored with name '', a
# model's generator preset looked up as ".../presets/.ini"
printf '%s\n' "$good" | sed 's/^name = .*/name =/' > "$TMP/noname.ini"
expect 2 "noname.ini:2: name: empty$" "model profile with an empty name: file:line" -- "$D2MOE" show model "$TMP/noname.ini"
expect 2 "noname.ini:2: name: empty$" "simulate: model profile with an empty name: file:line" -- "$D2MOE" simulate --model "$TMP/noname.ini" --device env2
printf '[device]\nname =\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = 5\nunified = true\n' > "$TMP/devnoname.ini"
expect 2 "devnoname.ini:2: name: empty$" "device profile with an empty name: file:line" -- "$D2MOE" show device "$TMP/devnoname.ini"
# checks across keys name the line of the key they blame, and run on the
# effective values: after --set, which can mend a profile or break it
printf '%s\n' "$good" | sed 's/top_k = 2/top_k = 8/' > "$TMP/topk.ini"
expect 2 "topk.ini:7: top_k: 8 is more than experts \(4\)$" "top_k > experts: file:line of top_k" -- "$D2MOE" show model "$TMP/topk.ini"
printf '%s\n' "$good" | sed 's/kv_heads = 1/kv_heads = 3/' > "$TMP/kvh.ini"
expect 2 "kvh.ini:9: kv_heads: 3 does not divide heads \(2\)$" "kv_heads not dividing heads: file:line of kv_heads" -- "$D2MOE" show model "$TMP/kvh.ini"
"$D2MOE" show model "$TMP/topk.ini" --set model.top_k=2 2>/dev/null | grep -Eq '^top_k += 2 '; ok $? "--set model.top_k=2 mends a profile's top_k > experts"
"$D2MOE" show model "$TMP/kvh.ini" --set model.heads=6 2>/dev/null | grep -Eq '^heads += 6 '; ok $? "--set model.heads=6 mends kv_heads = 3"
expect 2 "^d2moe: --set: model.experts: 1 is fewer than top_k \(2\)$" "a --set that breaks the check is named, not the profile's line" -- "$D2MOE" show model "$TMP/good.ini" --set model.experts=1
sed 's/^top_k = 2 .*/top_k = 9/' "$D2_SRCDIR/experiments/models/tiny-moe.ini" > "$TMP/tiny9.ini"
line=$(grep -n '^top_k' "$TMP/tiny9.ini" | cut -d: -f1)
expect 2 "tiny9.ini:$line: top_k: 9 is more than experts \(8\)" "simulate: the profile's line" -- "$D2MOE" simulate --model "$TMP/tiny9.ini" --device env1 --requests 1 --prompt 2 --gen 2
"$D2MOE" simulate --model "$TMP/tiny9.ini" --device env1 --requests 1 --prompt 2 --gen 2 --set model.top_k=2 > /dev/null; ok $? "simulate --set model.top_k=2 mends it"
printf '[device]\nname = d\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\npage_cache_bytes = 2G\nflash_bw = 1G\nflash_lat_ns = 5\nunified = true\n' > "$TMP/dev6.ini"
expect 2 "dev6.ini:7: page_cache_bytes: 2000000000 is larger than host_mem_bytes \(1000000000\)$" "device: page cache over host RAM: file:line" -- "$D2MOE" show device "$TMP/dev6.ini"
"$D2MOE" show device "$TMP/dev6.ini" --set device.host_mem_bytes=4G > /dev/null; ok $? "device: --set host_mem_bytes mends it"
printf '[device]\nname = d\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = 5\nunified = false\n' > "$TMP/dev7.ini"
expect 2 "dev7.ini:9: unified: false \(a discrete accelerator\) needs link_bw > 0$" "device: no link_bw on a discrete device: the line of unified" -- "$D2MOE" show device "$TMP/dev7.ini"
"$D2MOE" show device "$TMP/dev7.ini" --set device.link_bw=16G > /dev/null; ok $? "device: --set device.link_bw mends it"
# profile folders: --profiles must be a folder; so must $D2MOE_PROFILES when set
: > "$TMP/regf"
expect 2 "^d2moe: --profiles .*regf: not a directory$" "--profiles of a regular file: not a directory" -- "$D2MOE" --profiles "$TMP/regf" list models
if mkfifo "$TMP/ff" 2>/dev/null; then
    expect 2 "^d2moe: --profiles .*ff: not a directory$" "--profiles of a FIFO: not a directory" -- "$D2MOE" --profiles "$TMP/ff" list models
else skip "mkfifo failed"; fi
expect 2 "^d2moe: --profiles $TMP/none: No such file or directory$" "--profiles of a missing folder" -- "$D2MOE" --profiles "$TMP/none" list models
expect 2 "^d2moe: \\\$D2MOE_PROFILES=$TMP/none: No such file or directory$" "\$D2MOE_PROFILES missing: list models exits 2 naming it" -- env D2MOE_PROFILES="$TMP/none" "$D2MOE" list models
expect 2 "\\\$D2MOE_PROFILES=$TMP/none: " "\$D2MOE_PROFILES missing: list (the folders) exits 2" -- env D2MOE_PROFILES="$TMP/none" "$D2MOE" list
expect 2 "\\\$D2MOE_PROFILES=$TMP/regf: not a directory" "\$D2MOE_PROFILES a file: show device env1 exits 2, no fallback" -- env D2MOE_PROFILES="$TMP/regf" "$D2MOE" show device env1
expect 2 "\\\$D2MOE_PROFILES=$TMP/none: " "\$D2MOE_PROFILES missing: simulate exits 2" -- env D2MOE_PROFILES="$TMP/none" "$D2MOE" simulate --model tiny-moe --device env1 --requests 1 --prompt 2 --gen 2
env D2MOE_PROFILES= "$D2MOE" show device env1 > /dev/null; ok $? "an empty \$D2MOE_PROFILES is unset"
# every shipped profile loads
for f in "$D2_SRCDIR"/experiments/models/*.ini; do
    "$D2MOE" show model "$f" > /dev/null 2>&1; ok $? "shipped $(basename "$f") loads"
done
for f in "$D2_SRCDIR"/experiments/devices/*.ini; do
    "$D2MOE" show device "$f" > /dev/null 2>&1; ok $? "shipped $(basename "$f") loads"
done
# the host DRAM's parts (OS, serving process, pinned buffers) cannot be
# larger than it: host_os_bytes = 900T was accepted (page_cache_bytes had
# the check); with page_cache_auto their sum cannot be either.  A part left
# at its default is not held against a small host without page_cache_auto.
P="$D2_SRCDIR/experiments/devices/env2.ini"
for k in host_os_bytes host_process_bytes host_pinned_bytes; do
    sed "s/^$k = .*/$k = 900T/" "$P" > "$TMP/host-$k.ini"
    n=$(grep -n "^$k = " "$TMP/host-$k.ini" | cut -d: -f1)
    expect 2 "host-$k.ini:$n: $k: 900000000000000 is larger than host_mem_bytes \(68719476736\)$" "$k > host_mem_bytes: file:line" -- \
        "$D2MOE" show device "$TMP/host-$k.ini"
done
expect 2 "^d2moe: --set: device.host_mem_bytes: 1000000000 is smaller than host_os_bytes" "host_mem_bytes set below a given host_os_bytes: --set named" -- \
    "$D2MOE" show device "$P" --set device.host_mem_bytes=1G
expect 2 "host_os_bytes \+ host_process_bytes \+ host_pinned_bytes \(75430363136\) is larger than host_mem_bytes" \
    "page_cache_auto: the host parts together larger than host DRAM: exit 2" -- \
    "$D2MOE" show device "$P" --set device.page_cache_auto=true --set device.host_os_bytes=40Gi --set device.host_process_bytes=30Gi
printf '[device]\nname = d\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = 5\nunified = true\n' > "$TMP/smallhost.ini"
"$D2MOE" show device "$TMP/smallhost.ini" > /dev/null; ok $? "a 1 GB host with the host parts at their defaults, no page_cache_auto: accepted"
expect 2 "smallhost.ini:6: host_mem_bytes: 1000000000 is smaller than host_os_bytes \\(2147483648\\)" "the same with page_cache_auto: the default host_os_bytes does not fit" -- \
    "$D2MOE" show device "$TMP/smallhost.ini" --set device.page_cache_auto=true
done_testing
