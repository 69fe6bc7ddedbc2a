"""Reference embeddings for nook's encoder test, computed independently with sentence-transformers.

    python shared/tests/data/make_minilm_reference.py assets/models/all-MiniLM-L6-v2 > shared/tests/data/minilm_reference.json
    python shared/tests/data/make_minilm_reference.py assets/models/all-MiniLM-L6-v2 cls > shared/tests/data/minilm_cls_reference.json

With `cls` the same weights are pooled by the [CLS] token and L2-normalised (the BGE family's
pooling), to check nook's `1_Pooling/config.json` support against sentence-transformers.

Needs a venv with torch and sentence-transformers (bench/.venv-st); the model directory is the one
scripts/setup-assets.sh fetches.
"""
import json
import sys

from sentence_transformers import SentenceTransformer, models

SENTENCES = [
    "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy.",
    "A cowboy doll is profoundly threatened and jealous when a new spaceman figure supplants him as top toy in a boy's room.",
    "hello world",
    "What are you in the mood for? Something dark and funny, maybe a heist.",
    "The Matrix (1999). Genres: Action, Sci-Fi, Thriller. Tags: cyberpunk, philosophy, virtual reality.",
    "Crème brûlée, naïve café — ünïcödé ✓ 日本語のテキスト",
    "a",
    "Heat (1995). Genres: Action, Crime, Thriller. Hunters and their prey--Neil and his professional criminal crew hunt to score big money targets (banks, vaults, armored cars) and are, in turn, hunted by Lt. Vincent Hanna and his team of cops in the Robbery/Homicide police division. A botched job puts Hanna onto their trail while they regroup and try to put together one last big 'retirement' score. Neil and Vincent are similar in many ways, including their troubled personal lives. At a crucial moment in his life, Neil disobeys the dictum taught to him long ago by his criminal mentor--'Never have anything in your life that you can't walk out on in thirty seconds flat, if you spot the heat coming around the corner'--as he falls in love. Thus the stage is set for the suspenseful ending.",
]


def main() -> None:
    pooling = sys.argv[2] if len(sys.argv) > 2 else None
    if pooling:
        transformer = models.Transformer(sys.argv[1], max_seq_length=256)
        pool = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode=pooling)
        model = SentenceTransformer(modules=[transformer, pool, models.Normalize()], device="cpu")
    else:
        model = SentenceTransformer(sys.argv[1], device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=False, convert_to_numpy=True)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2" + (f" ({pooling} pooling)" if pooling else ""),
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "vectors": [[round(float(v), 7) for v in row] for row in vectors],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
