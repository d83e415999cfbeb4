# vllm-logs.py - writes the vllm-*-like.jsonl test logs (see README); run here
# with python3.  Not run by the tests: the files are committed.
import json, random
rnd = random.Random(13)
def route(req, t, layer, k, E):
    ids = rnd.sample(range(E), k)
    w = sorted([rnd.random() for _ in range(k)], reverse=True)
    s = sum(w); w = [round(x / s, 4) for x in w]
    return {"type": "route", "req_id": req, "token_idx": t, "layer": layer, "topk_ids": ids, "topk_weights": w}
def dump(name, rows):
    with open(name, "w") as f:
        for r in rows: f.write(json.dumps(r) + "\n")
# OLMoE-like: one req_id, running token_idx, uniform-weight warm-up, one layer
rows = [{"type": "meta", "model_id": "synthetic-olmoe-like", "layers_logged": [0], "top_k": 2, "num_experts": 8}]
rows += [{"type": "route", "req_id": "r0", "token_idx": t, "layer": 0, "topk_ids": [3, 1], "topk_weights": [0.5, 0.5]} for t in range(6)]
rows += [route("r0", t, 0, 2, 8) for t in range(6, 26)]
dump("vllm-olmoe-like.jsonl", rows)
# Qwen-like: one req_id "r1", non-uniform warm-up, token_idx restarts each forward batch
def qwen(layers, sizes, warm):
    rows = [{"type": "meta", "model_id": "synthetic-qwen-like", "layers_logged": layers, "top_k": 2, "num_experts": 8}]
    for l in layers:  # warm-up dummy batch, layer-major: identical rows per layer
        ids = [6, 2] if l == layers[0] else [4, 7]
        rows += [{"type": "route", "req_id": "r1", "token_idx": t, "layer": l, "topk_ids": ids, "topk_weights": [0.62, 0.38]} for t in range(warm)]
    for n in sizes:  # forward batches, layer-major, token_idx from 0
        for l in layers:
            rows += [route("r1", t, l, 2, 8) for t in range(n)]
    return rows
dump("vllm-qwen-like.jsonl", qwen([5], [7, 2, 2, 2, 1, 1], 8))
dump("vllm-qwen-like-2layer.jsonl", qwen([1, 2], [7, 2, 2, 2, 1, 1], 4))
dump("vllm-qwen-like-1req.jsonl", qwen([0], [5, 1, 1, 1], 8))
