"""Load on the HTTP service: N concurrent clients for S seconds against `cnnlab serve` on loopback.

The service runs in its own process (`python -m cnnlab serve ...` on a free 127.0.0.1 port);
each client is a thread here with its own keep-alive connection, posting scikit-image's `chelsea`
centre-cropped to a 224x224 PNG to /v1/predict (classification, top-5) as fast as answers come.
Bar: 0 errors. Prints requests/s and p50 / p90 / p99 / max latency.

    python benchmarks/serve_load.py                                # pretrained efficientnet_lite0
    python benchmarks/serve_load.py --checkpoint runs/x/best.pt    # a checkpoint (.pt or .onnx)
    python benchmarks/serve_load.py --clients 8 --seconds 30
    python benchmarks/serve_load.py --runtime onnxruntime          # predict through onnxruntime
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

BOUNDARY = "cnnlab-load-boundary"


def photo_png() -> bytes:
    """scikit-image's chelsea (300x451), centre-cropped to 300x300 and resized to 224x224."""
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.chelsea())
    w, h = img.size
    side = min(w, h)
    img = img.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)).resize((224, 224))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def multipart(image: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"chelsea.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(args: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "serve", *args, "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"cnnlab serve exited: {proc.stderr.read()[-2000:]}")
            time.sleep(0.5)
    proc.kill()
    sys.exit("cnnlab serve did not answer /healthz within 300 s")


def client(port: int, body: bytes, stop_at: float, latencies: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    while time.monotonic() < stop_at:
        t = time.perf_counter()
        try:
            conn.request("POST", "/v1/predict", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200 or not json.loads(payload).get("top"):
                errors.append(f"{response.status}: {payload[:200]!r}")
                continue
        except (OSError, http.client.HTTPException, ValueError) as e:
            errors.append(f"{type(e).__name__}: {e}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            continue
        latencies.append(time.perf_counter() - t)
    conn.close()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="serve this checkpoint (.pt or .onnx) instead of pretrained efficientnet_lite0")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--runtime", default="pytorch", choices=["pytorch", "onnxruntime"], help="cnnlab serve --runtime")
    a = ap.parse_args(argv)
    body = multipart(photo_png())
    port = free_port()
    serve_args = [a.checkpoint] if a.checkpoint else ["--model", "efficientnet_lite0", "--pretrained"]
    serve_args += ["--runtime", a.runtime]
    proc = start_service(serve_args, port)
    try:
        warm: list = []
        client(port, body, time.monotonic() + 2, warm, errs := [])  # first requests: lazy imports, allocator
        if errs:
            sys.exit(f"warm-up failed: {errs[0]}")
        load = os.getloadavg()[0]
        latencies: list[float] = []
        errors: list[str] = []
        start = time.monotonic()
        stop_at = start + a.seconds
        threads = [threading.Thread(target=client, args=(port, body, stop_at, latencies, errors))
                   for _ in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ms = sorted(1e3 * v for v in latencies)
    print(f"# cnnlab serve {' '.join(serve_args)}: {a.clients} clients x {a.seconds:g} s on 127.0.0.1, "
          f"224x224 PNG, /v1/predict top-5; {os.cpu_count()} CPUs, load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"requests {len(ms)}  errors {len(errors)}  ({'pass' if not errors else 'FAIL'}: bar 0 errors)")
    if ms:
        print(f"throughput {len(ms) / elapsed:.1f} requests/s over {elapsed:.1f} s")
        print(f"latency ms: p50 {percentile(ms, 50):.0f}  p90 {percentile(ms, 90):.0f}  "
              f"p99 {percentile(ms, 99):.0f}  max {ms[-1]:.0f}  mean {statistics.fmean(ms):.0f}")
    for e in errors[:5]:
        print("error:", e)


if __name__ == "__main__":
    main()
