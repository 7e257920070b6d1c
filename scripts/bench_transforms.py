#!/usr/bin/env python3
"""Time per record of the same transform in each guest language.

Scaffolds `shout` with `tributary transform new` in Rust, Python,
JavaScript and C (upper-case one text field), builds them and the `curate`
examples in the same four languages (block sources, mask authors, add a
field), and runs `tributary transform test` over N generated records
(batches of 1000), three rounds, reporting the median µs per record as `transform test` measures it (the calls into the
guest, with the conversion of rows in and out; not the compile). The
built-in Rust watermark and dedup run in the same rounds for reference.

    scripts/bench_transforms.sh 100000
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    componentize = shutil.which("componentize-py") or os.path.join(os.path.dirname(sys.executable), "componentize-py")

    with tempfile.TemporaryDirectory(prefix="bench-transforms-") as work:
        def sh(cmd, cwd=work, env=None):
            subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        sh([args.bin, "transform", "new", "shout", "--lang", "rust"])
        env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(work, "target"))
        sh(["cargo", "build", "--release", "--quiet", "--target", "wasm32-wasip2"], cwd=os.path.join(work, "shout"), env=env)
        sh([args.bin, "transform", "new", "shout_py", "--lang", "python"])
        sh([os.path.join(work, "shout_py", "build.sh")], env=dict(os.environ, COMPONENTIZE_PY=componentize))
        sh([args.bin, "transform", "new", "shout_js", "--lang", "js"])
        sh([os.path.join(work, "shout_js", "build.sh")])
        sh([args.bin, "transform", "new", "shout_c", "--lang", "c"])
        with_bin = dict(os.environ, TRIBUTARY_BIN=args.bin)
        sh([os.path.join(work, "shout_c", "build.sh")], env=with_bin)
        root = os.path.dirname(HERE)
        sh(["cargo", "build", "--release", "--quiet", "--locked", "--target", "wasm32-wasip2", "-p", "tributary-example-curate"],
           cwd=root, env=env)
        sh([os.path.join(root, "examples/transforms/c/build.sh"), os.path.join(work, "curate_c.wasm")], env=with_bin)
        sh([os.path.join(root, "examples/transforms/python/build.sh"), os.path.join(work, "curate_py.wasm")],
           env=dict(os.environ, PATH=os.path.dirname(componentize) + os.pathsep + os.environ["PATH"]))
        sh([os.path.join(root, "examples/transforms/js/build.sh"), os.path.join(work, "curate_js.wasm")])

        data = os.path.join(work, "in.jsonl")
        with open(data, "w") as f:
            for i in range(args.records):
                f.write(json.dumps({"id": f"a-{i}", "title": f"title number {i} of the day",
                                    "source": "reuters", "author": "Ann Author", "published_at": f"2026-01-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z"}) + "\n")
        cases = {
            "Rust (transform new --lang rust)": ([os.path.join(work, "target/wasm32-wasip2/release/shout.wasm")], ["field=title"]),
            "Python (transform new --lang python)": ([os.path.join(work, "shout_py/shout_py.wasm")], ["field=title"]),
            "JavaScript (transform new --lang js)": ([os.path.join(work, "shout_js/shout_js.wasm")], ["field=title"]),
            "C (transform new --lang c)": ([os.path.join(work, "shout_c/shout_c.wasm")], ["field=title"]),
            "curate, Rust (examples/transforms/rust, the SDK)": ([os.path.join(work, "target/wasm32-wasip2/release/curate.wasm")], ["block_sources=bbc"]),
            "curate, C (examples/transforms/c)": ([os.path.join(work, "curate_c.wasm")], ["block_sources=bbc"]),
            "curate, Python (examples/transforms/python)": ([os.path.join(work, "curate_py.wasm")], ["block_sources=bbc"]),
            "curate, JavaScript (examples/transforms/js)": ([os.path.join(work, "curate_js.wasm")], ["block_sources=bbc"]),
            "builtin:watermark (Rust)": (["builtin:watermark"], ["event_time=published_at", "delay=2 hours"]),
            "builtin:dedup (Rust)": (["builtin:dedup"], ["key=id", "event_time=published_at", "within=2 hours"]),
        }
        times = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (module, config) in cases.items():
                cmd = [args.bin, "transform", "test", *module, "--input", data]
                for c in config:
                    cmd += ["--config", c]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True)
                m = re.search(r"([\d.]+) µs per record", out.stderr)
                times[name].append(float(m.group(1)))
                print(f"{name}: {m.group(1)} µs/record", file=sys.stderr)

    print(f"\n{args.records} records, batches of 1000, medians of {args.rounds} rounds\n")
    print("| transform | µs per record |")
    print("|---|---|")
    for name, ts in times.items():
        ts.sort()
        print(f"| {name} | {ts[len(ts) // 2]:.2f} |")


if __name__ == "__main__":
    main()
