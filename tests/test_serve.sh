#!/usr/bin/env bash
# zipcache serve end to end with curl, on 127.0.0.1 and a free port: the
# endpoints, greedy output identical to `zipcache run` (alone and with four
# sessions at once; that steps batch several sessions is checked by
# test_serve_load.sh, where overlap is certain), prefix reuse on a chat's second turn,
# hostile requests (each a 4xx JSON error, the server alive afterwards),
# the bounded queue (503), the KV budget (503), slot save/restore across a
# restart with damaged and foreign files refused, and /metrics agreeing with
# what was sent. Every server started here is killed at the end; every wait
# is bounded. Missing model or curl => SKIP.
set -u
cd "$(dirname "$0")/.." || exit 1
Z=${ZIPCACHE_BIN:-build/zipcache}
A=${ZIPCACHE_ASSETS:-../shared}
M=$A/models/stories260K/stories260K.gguf
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; shift; echo "  $*" >&2; }
check() { if eval "$2"; then pass "$1"; else fail "$1" "$3"; fi; }
if [ ! -f "$M" ]; then echo "SKIP serve: $M not found"; exit 0; fi
if ! command -v curl >/dev/null; then echo "SKIP serve: no curl"; exit 0; fi

# start NAME ARGS...: a server on a free port; sets PORT (0 when it failed to start)
start() {
    local name=$1; shift
    "$Z" serve -m "$M" --port 0 -t 1 "$@" >"$T/$name.out" 2>"$T/$name.log" &
    PIDS+=($!)
    LAST_PID=$!
    PORT=0
    for _ in $(seq 100); do
        PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$T/$name.log" 2>/dev/null | grep -o '[0-9]*$')
        [ -n "$PORT" ] && return 0
        kill -0 "$LAST_PID" 2>/dev/null || break
        sleep 0.1
    done
    PORT=0
    return 1
}
# req METHOD PATH [BODY]: prints the body, then the status on the last line
req() { curl -s -m 60 -X "$1" -w '\n%{http_code}' "http://127.0.0.1:$PORT$2" ${3:+--data-binary "$3"}; }
status_of() { tail -n1; }
body_of() { sed '$d'; }
jget() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
is_error_json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); assert isinstance(d['error']['message'], str) and d['error']['message']" 2>/dev/null; }

start main --parallel 4 -c 512 --chat-template chatml --queue 8 || { fail serve_start "$(cat "$T/main.log")"; exit 0; }

# ---- endpoints ----
r=$(req GET /health); check serve_health '[ "$(echo "$r" | status_of)" = 200 ] && echo "$r" | body_of | grep -q "\"ok\""' "$r"
r=$(req GET /v1/models); check serve_models '[ "$(echo "$r" | status_of)" = 200 ] && [ "$(echo "$r" | body_of | jget "d[\"data\"][0][\"object\"]")" = model ]' "$r"

# ---- greedy completion == zipcache run ----
"$Z" run -m "$M" -p "Once upon a time" -n 24 --temp 0 -c 512 -t 1 >"$T/run.txt" 2>/dev/null
# run prints the prompt first and a newline at the end
want=$(/usr/bin/python3 -c "import sys; t=open(sys.argv[1]).read(); print(repr(t[len('Once upon a time'):-1]))" "$T/run.txt")
r=$(req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":0}')
got=$(echo "$r" | body_of | jget 'repr(d["choices"][0]["text"])')
fin=$(echo "$r" | body_of | jget 'd["choices"][0]["finish_reason"], d["usage"]["completion_tokens"]')
check serve_completion_matches_run '[ "$got" = "$want" ] && [ "$fin" = "('"'"'length'"'"', 24)" ]' "got $got want $want ($fin)"

# ---- four sessions in one batch give each its own greedy text ----
P=("One day" "The cat" "Tom and Sue" "Once upon a time")
for i in 0 1 2 3; do
    "$Z" run -m "$M" -p "${P[$i]}" -n 40 --temp 0 -c 512 -t 1 2>/dev/null |
        /usr/bin/python3 -c "import sys; t=sys.stdin.read(); print(repr(t[len(sys.argv[1]):-1]))" "${P[$i]}" >"$T/want$i"
done
CURLS=()
for i in 0 1 2 3; do
    curl -s -m 60 "http://127.0.0.1:$PORT/v1/completions" -d "{\"prompt\":\"${P[$i]}\",\"max_tokens\":40,\"temperature\":0}" >"$T/got$i" &
    CURLS+=($!)
done
wait "${CURLS[@]}" # each curl gives up after 60 s
ok=1
for i in 0 1 2 3; do
    g=$(jget 'repr(d["choices"][0]["text"])' <"$T/got$i" 2>/dev/null)
    [ "$g" = "$(cat "$T/want$i")" ] || { ok=0; echo "  session $i: got $g want $(cat "$T/want$i")" >&2; }
done
check serve_batched_sessions_match_run '[ $ok = 1 ]' "batched output differs"

# ---- streaming ----
curl -sN -m 60 "http://127.0.0.1:$PORT/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"Hello"}],"max_tokens":8,"stream":true,"temperature":0}' >"$T/sse"
check serve_stream_chat '/usr/bin/python3 - "$T/sse" <<EOF
import json, sys
lines = [l for l in open(sys.argv[1]).read().split("\n") if l]
assert all(l.startswith("data: ") for l in lines), lines
assert lines[-1] == "data: [DONE]"
chunks = [json.loads(l[6:]) for l in lines[:-1]]
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
assert all(c["object"] == "chat.completion.chunk" for c in chunks)
assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length") and "usage" in chunks[-1]
text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
assert chunks[-1]["usage"]["completion_tokens"] >= 1
EOF' "$(head -c 600 "$T/sse")"

# ---- prefix reuse: the second turn of a chat prefills only the new message ----
r=$(req POST /v1/chat/completions '{"messages":[{"role":"user","content":"Tell me a story about a dog."}],"max_tokens":12,"temperature":0}')
reply=$(echo "$r" | body_of | jget 'json.dumps(d["choices"][0]["message"]["content"])')
p1=$(echo "$r" | body_of | jget 'd["usage"]["prompt_tokens"]')
r=$(req POST /v1/chat/completions '{"messages":[{"role":"user","content":"Tell me a story about a dog."},{"role":"assistant","content":'"$reply"'},{"role":"user","content":"And then?"}],"max_tokens":4,"temperature":0}')
cached=$(echo "$r" | body_of | jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')
check serve_prefix_reuse '[ "$(echo "$r" | status_of)" = 200 ] && [ "$cached" -ge "$p1" ]' "cached $cached of turn-1 prompt $p1: $r"

# ---- hostile requests: each a 4xx JSON error ----
hostile() { # name expected-status method path body-file-or-string [curl args]
    local name=$1 want=$2 method=$3 path=$4 body=$5; shift 5
    local out
    out=$(curl -s -m 60 -X "$method" -w '\n%{http_code}' "http://127.0.0.1:$PORT$path" "$@" --data-binary "$body")
    local st; st=$(echo "$out" | tail -n1)
    if [ "$st" = "$want" ] && echo "$out" | sed '$d' | is_error_json; then pass "serve_hostile_$name"; else
        fail "serve_hostile_$name" "status $st (want $want): $(echo "$out" | head -c 300)"; fi
}
hostile malformed_json 400 POST /v1/completions '{"prompt": "x",'
hostile not_an_object 400 POST /v1/completions '["prompt"]'
hostile empty_body 400 POST /v1/completions ''
hostile prompt_wrong_type 400 POST /v1/completions '{"prompt": 42}'
hostile messages_wrong_type 400 POST /v1/chat/completions '{"messages": "hi"}'
hostile role_unknown 400 POST /v1/chat/completions '{"messages": [{"role": "wizard", "content": "x"}]}'
hostile temperature_string 400 POST /v1/completions '{"prompt": "x", "temperature": "hot"}'
hostile huge_max_tokens 400 POST /v1/completions '{"prompt": "x", "max_tokens": 1e300}'
hostile huge_integer 400 POST /v1/completions '{"prompt": "x", "max_tokens": 99999999999999999999999}'
hostile negative_max_tokens 400 POST /v1/completions '{"prompt": "x", "max_tokens": -5}'
hostile top_p_out_of_range 400 POST /v1/completions '{"prompt": "x", "top_p": 7}'
hostile n_two 400 POST /v1/completions '{"prompt": "x", "n": 2}'
hostile stop_too_many 400 POST /v1/completions '{"prompt": "x", "stop": ["a","b","c","d","e"]}'
hostile deep_nesting 400 POST /v1/completions "$(printf '%0.s[' $(seq 5000))"
printf '{"prompt": "\xff\xfe bad utf-8"}' >"$T/badutf8"
hostile invalid_utf8 400 POST /v1/completions "@$T/badutf8"
/usr/bin/python3 -c "
import json; print(json.dumps({'messages': [{'role': 'user' if i % 2 == 0 else 'assistant', 'content': 'hello there'} for i in range(10000)]}))" >"$T/many"
hostile ten_thousand_messages 400 POST /v1/chat/completions "@$T/many"
head -c 100000000 /dev/zero >"$T/huge"
hostile body_100MB 413 POST /v1/completions "@$T/huge"
hostile no_such_endpoint 404 GET /v1/nothing ''
hostile wrong_method 405 GET /v1/completions ''
hostile long_prompt 400 POST /v1/completions "{\"prompt\": \"$(printf 'word %.0s' $(seq 2000))\"}"
hostile stream_bad_request 400 POST /v1/chat/completions '{"messages": [], "stream": true}'
check serve_alive_after_hostile '[ "$(req GET /health | status_of)" = 200 ] && kill -0 $LAST_PID' "server died"

# ---- stop strings ----
r=$(req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":40,"temperature":0,"stop":["little"]}')
t=$(echo "$r" | body_of | jget 'd["choices"][0]["text"] + "|" + d["choices"][0]["finish_reason"]')
check serve_stop_string '[ "$t" = ", there was a |stop" ]' "$t"

# ---- /metrics agrees with what was sent ----
m=$(curl -s -m 10 "http://127.0.0.1:$PORT/metrics")
n413=$(echo "$m" | awk -F' ' '/^zipcache_requests_total\{code="413"\}/ {print $2}')
n400=$(echo "$m" | awk -F' ' '/^zipcache_requests_total\{code="400"\}/ {print $2}')
check serve_metrics '[ "$n413" = 1 ] && [ "$n400" = 18 ] && echo "$m" | grep -q "^zipcache_kv_bytes{policy=\"zipcache\"}" && echo "$m" | grep -q "^zipcache_kv_session_bytes{slot=\"3\""' "413: $n413, 400: $n400"
kill "$LAST_PID"

# ---- queue bound: 1 slot, 1 waiting, the rest 503 ----
start q --parallel 1 --queue 1 -c 4096 || { fail serve_queue_start "$(cat "$T/q.log")"; }
if [ "$PORT" != 0 ]; then
    CURLS=()
    for i in $(seq 5); do
        curl -s -m 60 -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$PORT/v1/completions" \
            -d '{"prompt":"Once upon a time","max_tokens":600,"temperature":1}' >"$T/q$i" &
        CURLS+=($!)
    done
    wait "${CURLS[@]}" # the 503s come at once; the admitted and the waiting request within seconds
    n503=$(cat "$T"/q? | grep -c 503); n200=$(cat "$T"/q? | grep -c 200)
    check serve_queue_full_503 '[ "$n503" -ge 1 ] && [ "$n200" -ge 1 ] && [ $((n503 + n200)) = 5 ]' "200: $n200, 503: $n503"
    kill "$LAST_PID"
fi

# ---- KV budget: a prompt that cannot fit is 503, smaller ones are served ----
start b --parallel 2 -c 512 --kv-budget 40K || { fail serve_budget_start "$(cat "$T/b.log")"; }
if [ "$PORT" != 0 ]; then
    r=$(req POST /v1/completions "{\"prompt\": \"$(printf 'word %.0s' $(seq 100))\", \"max_tokens\": 4}")
    r2=$(req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":4}')
    check serve_budget_503 '[ "$(echo "$r" | status_of)" = 503 ] && echo "$r" | body_of | grep -q budget && [ "$(echo "$r2" | status_of)" = 200 ]' "$r / $r2"
    kill "$LAST_PID"
fi

# ---- slot save / restore across a restart ----
mkdir -p "$T/slots"
start s1 --parallel 2 -c 512 --kv zipcache --kv-stream-gap 16 --slot-save-path "$T/slots" || fail serve_slots_start "$(cat "$T/s1.log")"
if [ "$PORT" != 0 ]; then
    r=$(req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":30,"temperature":0}')
    first=$(echo "$r" | body_of | jget 'd["choices"][0]["text"]')
    r=$(req POST /slots/0?action=save '{"filename":"story.bin"}')
    n_saved=$(echo "$r" | body_of | jget 'd["n_saved"]')
    check serve_slot_save '[ "$(echo "$r" | status_of)" = 200 ] && [ "$n_saved" -ge 30 ] && [ -s "$T/slots/story.bin" ]' "$r"
    hostile slot_path_traversal 400 POST /slots/0?action=save '{"filename":"../evil"}'
    hostile slot_bad_action 400 POST /slots/0?action=fly '{"filename":"x"}'
    hostile slot_no_such_slot 404 POST /slots/7?action=save '{"filename":"x"}'
    kill "$LAST_PID"
    start s2 --parallel 2 -c 512 --kv zipcache --kv-stream-gap 16 --slot-save-path "$T/slots"
    r=$(req POST /slots/1?action=restore '{"filename":"story.bin"}')
    n_rest=$(echo "$r" | body_of | jget 'd["n_restored"]')
    r2=$(req GET /slots)
    check serve_slot_restore '[ "$(echo "$r" | status_of)" = 200 ] && [ "$n_rest" = "$n_saved" ] && echo "$r2" | grep -q "\"n_tokens\":$n_saved"' "$r / $r2"
    head -c 1000 "$T/slots/story.bin" >"$T/slots/cut.bin"
    cp "$T/slots/story.bin" "$T/slots/flip.bin"
    printf '\x55' | dd of="$T/slots/flip.bin" bs=1 seek=700 conv=notrunc 2>/dev/null
    hostile slot_restore_truncated 400 POST /slots/0?action=restore '{"filename":"cut.bin"}'
    hostile slot_restore_corrupt 400 POST /slots/0?action=restore '{"filename":"flip.bin"}'
    hostile slot_restore_missing 404 POST /slots/0?action=restore '{"filename":"none.bin"}'
    # the restored session goes on: a prompt extending it is served from the restored cache
    body=$(/usr/bin/python3 -c "import json,sys; print(json.dumps({'prompt': 'Once upon a time' + sys.argv[1] + ' Then', 'max_tokens': 4}))" "$first")
    r=$(req POST /v1/completions "$body")
    cached=$(echo "$r" | body_of | jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')
    check serve_slot_restored_reused '[ "$(echo "$r" | status_of)" = 200 ] && [ "$cached" -ge $((n_saved - 2)) ]' "cached $cached of $n_saved: $r"
    kill "$LAST_PID"
    start s3 --parallel 2 -c 512 --kv fp16 --slot-save-path "$T/slots"
    hostile slot_restore_other_policy 400 POST /slots/0?action=restore '{"filename":"story.bin"}'
    kill "$LAST_PID"
fi

# ---- usage errors ----
"$Z" serve -m "$M" --chat-template bogus >"$T/u.out" 2>"$T/u.err"; rc=$?
check serve_unknown_template '[ $rc = 2 ] && grep -q "unknown template .bogus." "$T/u.err" && [ "$(wc -l <"$T/u.err")" = 1 ]' "rc $rc: $(cat "$T/u.err")"
"$Z" serve -m "$M" --host example.com >"$T/u.out" 2>"$T/u.err"; rc=$?
check serve_bad_host '[ $rc = 2 ]' "rc $rc: $(cat "$T/u.err")"

# every server exits cleanly on SIGTERM; under `make asan` its log has no sanitizer report
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
codes=""
for p in "${PIDS[@]}"; do wait "$p"; codes="$codes $?"; done
PIDS=()
reports=$(grep -l -E "AddressSanitizer|LeakSanitizer|runtime error" "$T"/*.log 2>/dev/null)
check serve_clean_exit '[ -z "$reports" ] && [ -z "$(echo $codes | tr -d " 0")" ]' "exit codes:$codes; reports in: $reports $(cat $reports 2>/dev/null | head -40)"
exit 0
