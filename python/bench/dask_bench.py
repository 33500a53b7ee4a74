"""Dask and pandas over kapsel files: a benchmark, not a test.

    pip install './python[dask]'          # release build of the extension
    python3 python/bench/dask_bench.py [--size-mib 1024] [--block-mib 64] [--dir /tmp]

Measures, printing one table per part:

1. ``dask.bytes.read_bytes`` over a SIZE MiB encrypted file with 1 and 2
   worker processes (LocalCluster, one thread each), against the same read
   of the plaintext file: wall time and throughput. Each block is reduced
   to its length on the worker, so the numbers are reading and decrypting,
   not shipping bytes to the client.
2. The ciphertext each block fetches (header excluded) against the block
   size: the overhead of chunk alignment and of fsspec's read-ahead.
3. The peak resident memory of each worker process (ru_maxrss) after each
   run.
4. ``pandas.read_csv`` of an encrypted CSV against the plaintext CSV.

The files are written to --dir and removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time

import dask
import pandas as pd
from dask.bytes import read_bytes
from dask.distributed import Client, LocalCluster

import kapsel

MIB = 1 << 20


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def block_lengths(url: str, block: int, opts: dict, client: Client) -> tuple:
    _, blocks = read_bytes(url, blocksize=block, delimiter=None, sample=False, **opts)
    lengths = [dask.delayed(len)(b) for b in blocks[0]]
    start = time.perf_counter()
    total = sum(client.compute(lengths, sync=True))
    return total, time.perf_counter() - start, len(lengths)


def fetched_per_block(url: str, block: int, opts: dict, client: Client) -> list:
    """Ciphertext bytes each block's task fetched, measured on the workers."""
    import fsspec
    from dask.bytes.core import read_block

    fs, path = fsspec.core.url_to_fs(url, **opts)
    size = fs.info(path)["size"]

    def one(offset: int) -> int:
        with fs.open(path, "rb") as f:
            read_block(f, offset, min(block, size - offset), None)
            return f.bytes_fetched

    futures = [client.submit(one, off, pure=False) for off in range(0, size, block)]
    return client.gather(futures)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--block-mib", type=int, default=64)
    ap.add_argument("--csv-mib", type=int, default=256)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="kapsel-bench-", dir=args.dir)
    me = kapsel.Identity.generate()
    block = args.block_mib * MIB
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
          f"dask {dask.__version__}; pandas {pd.__version__}")
    try:
        plain = os.path.join(work, "big.bin")
        with open(plain, "wb") as f:
            for _ in range(args.size_mib // 64):
                f.write(os.urandom(64 * MIB))
        cipher = plain + ".kap"
        t = time.perf_counter()
        kapsel.encrypt(plain, cipher, me.to_recipient())
        enc_s = time.perf_counter() - t
        print(f"encrypt {args.size_mib} MiB path to path: {enc_s:.2f} s ({args.size_mib / enc_s:.0f} MiB/s)")
        opts = {"kapsel": {"identities": [me]}}

        print(f"\n1. read_bytes, {args.size_mib} MiB, blocks of {args.block_mib} MiB")
        print("| workers | file | blocks | time (s) | MiB/s | peak RSS per worker (MiB) |")
        print("|---|---|---|---|---|---|")
        for n in (1, 2):
            for label, url, o in (("plaintext", f"file://{plain}", {}), ("kapsel", f"kapsel::file://{cipher}", opts)):
                with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, Client(cluster) as client:
                    total, secs, nblocks = block_lengths(url, block, o, client)
                    assert total == args.size_mib * MIB, total
                    rss = sorted(client.run(peak_rss_mib).values())
                    print(f"| {n} | {label} | {nblocks} | {secs:.2f} | {args.size_mib / secs:.0f} | "
                          f"{', '.join(f'{r:.0f}' for r in rss)} |")

        print("\n2. ciphertext fetched per block (header excluded)")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None, host="127.0.0.1") as cluster, Client(cluster) as client:
            fetched = fetched_per_block(f"kapsel::file://{cipher}", block, opts, client)
        full = fetched[:-1] or fetched
        print(f"block {block} bytes: fetched min {min(full)}, max {max(full)}, "
              f"overhead {100 * (max(full) - block) / block:.3f} % "
              f"({max(full) - block} bytes: 16 bytes of tag per 16 KiB chunk, alignment, 64 KiB read-ahead)")

        print(f"\n3. pandas.read_csv, about {args.csv_mib} MiB of CSV")
        csv = os.path.join(work, "t.csv")
        rows = args.csv_mib * MIB // 40
        pd.DataFrame({"id": range(rows), "x": [i * 0.5 for i in range(rows)], "s": "abcdefghij"}).to_csv(csv, index=False)
        kapsel.encrypt(csv, csv + ".kap", me.to_recipient())
        print("| file | MiB | time (s) |")
        print("|---|---|---|")
        for label, url, o in (("plaintext", csv, None), ("kapsel", f"kapsel::file://{csv}.kap", opts)):
            t = time.perf_counter()
            df = pd.read_csv(url, storage_options=o)
            secs = time.perf_counter() - t
            print(f"| {label} | {os.path.getsize(csv) / MIB:.0f} | {secs:.2f} |")
            assert len(df) == rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
