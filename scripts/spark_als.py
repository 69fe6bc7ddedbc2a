#!/usr/bin/env python3
"""Fits Spark MLlib's implicit ALS on a `nook split` file and saves it with `ALSModel.save`.

The saved directory (`userFactors/`, `itemFactors/` as Parquet) is what `nook import-factors`,
`nook eval --factors-from` and `nook train --als-from` read. Runs in Spark's local mode by
default; on a cluster the same script runs under `spark-submit --master yarn|k8s://...`.

    python scripts/spark_als.py --interactions SPLIT/fit.csv --out als [--reg-param 0.01,0.03]

Several --reg-param / --alpha values fit one model per combination, each saved under
OUT/reg<r>-alpha<a>/, in one Spark session (to choose them on validation); one combination
is saved in OUT itself. Every positive counts as rating 1 (as nook's own ALS fits), so a
Spark `alpha` gives the same confidence 1 + alpha as nook's `--alpha`. Spark multiplies
`regParam` by each row's number of ratings, so it is not nook's `--regularization`: choose
it on validation. Prints one line per fit: `fit reg=R alpha=A seconds=S users=U items=I`.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interactions", required=True, help="CSV with a header and user,item columns (nook split's fit.csv)")
    p.add_argument("--out", required=True, help="directory to save the model(s) in (must not exist)")
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--max-iter", type=int, default=15)
    p.add_argument("--reg-param", default="0.1", help="comma-separated values")
    p.add_argument("--alpha", default="0.5", help="comma-separated values")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--master", default=None, help="Spark master (default: local[N] unless spark-submit set one)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="local mode's cores")
    p.add_argument("--driver-memory", default="4g", help="local mode's JVM heap")
    p.add_argument("--blocks", type=int, default=None, help="ALS user and item blocks (Spark's default: 10)")
    args = p.parse_args()
    try:
        args.reg_params = [float(v) for v in args.reg_param.split(",")]
        args.alphas = [float(v) for v in args.alpha.split(",")]
    except ValueError as e:
        p.error(f"--reg-param/--alpha: {e}")
    if any(v < 0 for v in args.reg_params + args.alphas) or args.rank < 1 or args.max_iter < 1:
        p.error("--rank and --max-iter must be positive, --reg-param and --alpha non-negative")
    if is_local(args.out) and os.path.exists(args.out):
        p.error(f"--out {args.out} exists; nook's tools never replace what they did not write")
    return args


def is_local(path):
    """A plain path (checked here) rather than a URL such as hdfs://… (checked by Spark)."""
    return "://" not in path


def fail(msg):
    print(f"spark_als.py: {msg}", file=sys.stderr)
    sys.exit(2)


def load(spark, path):
    """The positives as (user int, item int, rating 1.0); refuses ids Spark's ALS cannot take."""
    from pyspark.sql import functions as F

    if is_local(path) and not os.path.isfile(path):
        fail(f"{path}: no such file")
    raw = spark.read.option("header", True).csv(path)
    for col in ("user", "item"):
        if col not in raw.columns:
            fail(f"{path}: no `{col}` column (header: {','.join(raw.columns)})")
    # Spark's ALS needs ids that fit a 32-bit int; say which row does not instead of failing deep in a job.
    typed = raw.select(F.col("user").cast("int").alias("user_id"), F.col("item").cast("int").alias("item_id"), "user", "item")
    bad = typed.where(F.col("user_id").isNull() | F.col("item_id").isNull()).first()
    if bad is not None:
        fail(f"{path}: user {bad['user']!r}, item {bad['item']!r}: Spark's ALS needs 32-bit integer ids")
    return typed.select("user_id", "item_id", F.lit(1.0).alias("rating"))


def main():
    args = parse_args()
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("nook-spark-als")
    # Under spark-submit the Python process is handed a running JVM (PYSPARK_GATEWAY_PORT) whose
    # master --master already set; run as a plain script, Spark runs in local mode.
    if args.master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = args.master or f"local[{args.threads}]"
        if master.startswith("local"):
            # A hostname that resolves to loopback makes Spark warn and guess an interface.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.master(master)
    spark = (
        builder.config("spark.driver.memory", args.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(2, args.threads)))
        # ALS's iterations chain RDD lineage; serialising a long chain recursed past the
        # default thread stack (StackOverflowError in task serialisation, seen on CI at 15
        # iterations). Checkpoints cut the chain; a larger stack is the margin.
        .config("spark.driver.extraJavaOptions", "-Xss16m")
        .config("spark.executor.extraJavaOptions", "-Xss16m")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    # A checkpoint directory of our own (removed afterwards): a cluster run points
    # spark.checkpoint.dir at shared storage instead, and that one is left alone.
    own_checkpoints = None
    if not spark.sparkContext.getCheckpointDir():
        if spark.sparkContext.master.startswith("local"):
            own_checkpoints = tempfile.mkdtemp(prefix="nook-spark-checkpoints-")
            spark.sparkContext.setCheckpointDir(own_checkpoints)
    try:
        data = load(spark, args.interactions).cache()
        n = data.count()
        if n == 0:
            fail(f"{args.interactions}: no interactions")
        combos = [(r, a) for r in args.reg_params for a in args.alphas]
        for reg, alpha in combos:
            als = ALS(
                rank=args.rank,
                maxIter=args.max_iter,
                regParam=reg,
                alpha=alpha,
                implicitPrefs=True,
                userCol="user_id",
                itemCol="item_id",
                ratingCol="rating",
                seed=args.seed,
                checkpointInterval=5,
            )
            if args.blocks:
                als = als.setNumUserBlocks(args.blocks).setNumItemBlocks(args.blocks)
            start = time.perf_counter()
            model = als.fit(data)  # ALS materialises both factor tables before it returns
            seconds = time.perf_counter() - start
            out = args.out if len(combos) == 1 else os.path.join(args.out, f"reg{reg:g}-alpha{alpha:g}")
            model.save(out)
            users, items = model.userFactors.count(), model.itemFactors.count()
            print(f"fit reg={reg:g} alpha={alpha:g} seconds={seconds:.2f} users={users} items={items} out={out}", flush=True)
    finally:
        spark.stop()
        if own_checkpoints:
            shutil.rmtree(own_checkpoints, ignore_errors=True)


if __name__ == "__main__":
    main()
