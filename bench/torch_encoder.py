"""PyTorch CPU counterpart of `nook bench`: sentence-transformers all-MiniLM-L6-v2 embedding
throughput and one contrastive fine-tuning step, on the same texts and settings. Prints JSON lines.

    python bench/torch_encoder.py --model DIR --texts FILE [--threads 2]
"""
import argparse
import copy
import json
import statistics
import time

import torch
from sentence_transformers import SentenceTransformer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", default="32,128")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ft-tokens", type=int, default=32)
    ap.add_argument("--ft-pairs", type=int, default=32)
    ap.add_argument("--ft-layers", default="2,7")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts = [l.strip() for l in open(args.texts) if l.strip()]
    model = SentenceTransformer(args.model, device="cpu")

    def throughput(m, tool):
        for tokens in [int(t) for t in args.tokens.split(",") if t]:  # "": fine-tuning only
            m.max_seq_length = tokens
            def one_pass():
                start = time.perf_counter()
                m.encode(texts, batch_size=args.batch, convert_to_numpy=True)
                return len(texts) / (time.perf_counter() - start)
            one_pass()
            rate = statistics.median(one_pass() for _ in range(args.repeats))
            print(json.dumps({"bench": "encoder", "tool": tool, "tokens": tokens, "batch": args.batch, "texts": len(texts), "sentences_per_s": rate}))

    throughput(model, "torch")
    # The second peer: PyTorch's dynamic int8 (int8 Linear weights, activations quantised per
    # batch at run time), what a PyTorch user would reach for to make this model faster on a CPU.
    throughput(torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8), "torch-int8")

    bert = model[0].auto_model
    tok = model.tokenizer
    n_layers = bert.config.num_hidden_layers
    batch_texts = (texts * 3)[: 2 * args.ft_pairs]
    enc = tok(batch_texts, padding=True, truncation=True, max_length=args.ft_tokens, return_tensors="pt")
    for blocks in [int(b) for b in args.ft_layers.split(",")]:
        first = n_layers + 1 - blocks  # block 0 = embeddings, block i + 1 = layer i, as in nook
        for name, p in bert.named_parameters():
            if name.startswith("embeddings."):
                p.requires_grad = first == 0
            elif name.startswith("encoder.layer."):
                p.requires_grad = int(name.split(".")[2]) + 1 >= first
            else:
                p.requires_grad = False
        params = [p for p in bert.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
        bert.eval()  # no dropout: the same maths as nook's training graph

        def step():
            """Seconds of the forward pass with the loss, the backward pass, and clip + AdamW."""
            start = time.perf_counter()
            out = bert(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            a, p = pooled[: args.ft_pairs], pooled[args.ft_pairs :]
            loss = torch.nn.functional.cross_entropy(a @ p.T / 0.05, torch.arange(args.ft_pairs))
            forward = time.perf_counter()
            opt.zero_grad()
            loss.backward()
            backward = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            end = time.perf_counter()
            return forward - start, backward - forward, end - backward

        step()
        times = [step() for _ in range(args.repeats)]
        phase = lambda i: statistics.median(t[i] for t in times)
        print(json.dumps({"bench": "finetune", "tool": "torch", "tokens": args.ft_tokens, "pairs": args.ft_pairs, "trained_blocks": blocks,
                          "seconds_per_step": statistics.median(sum(t) for t in times),
                          "forward_s": phase(0), "backward_s": phase(1), "optimizer_s": phase(2)}))


if __name__ == "__main__":
    main()
