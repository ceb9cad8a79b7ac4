"""Benchmarks (not tests: timings on shared machines are noisy, so they print figures and assert nothing).

    python -m charrnn bench train   training speed of the presets against the course notebook's loop (train.py)
    python -m charrnn bench app     the app's latency, throughput, start time and memory (app.py)
    python -m charrnn bench compress  the models as compressors of the test split, beside xz, zstd, bzip2, zpaq
    python -m charrnn bench testtime  what each test-time method costs to read, beside its gain (testtime.py)
"""
