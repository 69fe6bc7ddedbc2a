"""Converts the encoder to ONNX for the Transformers.js peer in bench/browser_bench.mjs, on this
machine, from the same local weights nook uses: fp32 export with torch, then dynamic int8
quantisation with onnxruntime (what Transformers.js loads for dtype "q8": onnx/model_quantized.onnx).

    bench/.venv-st/bin/python bench/onnx_export.py assets/models/all-MiniLM-L6-v2 out/onnx/all-MiniLM-L6-v2
"""
import shutil
import sys
from pathlib import Path

import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoModel, AutoTokenizer

src, out = Path(sys.argv[1]), Path(sys.argv[2])
(out / "onnx").mkdir(parents=True, exist_ok=True)
for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]:
    if (src / name).exists():
        shutil.copy(src / name, out / name)

class Encoder(torch.nn.Module):
    """Keyword arguments to BertModel, the last hidden state out (Transformers.js pools it)."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        # The additive mask is built here: transformers' own mask helpers trace the sample's
        # sequence length into the graph as a constant.
        hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        return self.bert.encoder(hidden, attention_mask=additive).last_hidden_state


model = Encoder(AutoModel.from_pretrained(src, attn_implementation="eager").eval())
tok = AutoTokenizer.from_pretrained(src)
sample = tok(["a sample sentence", "another one"], padding=True, return_tensors="pt")
names = ["input_ids", "attention_mask", "token_type_ids"]
dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
dynamic["last_hidden_state"] = {0: "batch", 1: "sequence"}
fp32 = out / "onnx" / "model.onnx"
with torch.no_grad():
    torch.onnx.export(
        model,
        tuple(sample[n] for n in names),
        str(fp32),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
quantize_dynamic(str(fp32), str(out / "onnx" / "model_quantized.onnx"), weight_type=QuantType.QInt8)
for f in sorted((out / "onnx").iterdir()):
    print(f"{f}: {f.stat().st_size / 1e6:.1f} MB")

# Check: mean-pooled, normalised vectors of both ONNX files against the PyTorch model.
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

text = tok(["a quiet film about lighthouse keepers"], return_tensors="np")
feeds = {n: text[n].astype(np.int64) for n in names}
mask = text["attention_mask"][..., None].astype(np.float32)


def pooled(hidden):
    v = (hidden * mask).sum(1) / mask.sum(1)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


with torch.no_grad():
    # A fresh copy: the exporter leaves the traced module in a state that no longer matches.
    fresh = AutoModel.from_pretrained(src).eval()
    ref = pooled(fresh(**{n: torch.from_numpy(feeds[n]) for n in names}).last_hidden_state.numpy())
for f in ["model.onnx", "model_quantized.onnx"]:
    sess = ort.InferenceSession(str(out / "onnx" / f), providers=["CPUExecutionProvider"])
    got = pooled(sess.run(None, feeds)[0])
    print(f"{f}: cosine to PyTorch {float((ref * got).sum()):.4f}")
