"""seqkern's products (_core.gemm: the layers' projections, the recurrent kernels' unpacked steps)
against NumPy in float64, at every SIMD level the machine has: a few rows of A with B read in
place (level avx2 and up), BLAS beyond them, A transposed, both layouts of B, columns split
between the threads, alpha and beta (with beta 0, C is never read); up to 32 rows against a
large B read in place (in_place_gemm.h); products of moderate size on the packed kernels,
whose bits do not depend on the thread count; A^T B over a short sum (small_k_gemm.h) with the
same bits at every level above baseline and on any thread count."""
import numpy as np
import pytest

from seqkern import _core
from simd_levels import LEVELS, run_at_level

GEMM_CHECK = """
import itertools
import numpy as np
from seqkern import _core
_core.set_num_threads(2)
rng = np.random.default_rng(0)
shapes = itertools.product(range(10), (1, 7, 8, 9, 65, 700), (0, 1, 7, 8, 9, 300))
for (M, N, K), ta, tb in itertools.product(shapes, (False, True), (False, True)):
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    for alpha, beta in ((1.0, 0.0), (0.5, 0.0), (-2.0, 1.5)):
        c0 = rng.standard_normal((M, N)).astype(np.float32)
        c = np.full((M, N), np.nan, np.float32) if beta == 0 else c0.copy()
        _core.gemm(ta, tb, alpha, a, b, beta, c)
        err = np.abs(c - (alpha * want + beta * c0)).max(initial=0)
        assert err <= 1e-5 * np.sqrt(K + 1) * (abs(alpha) + abs(beta)), (M, N, K, ta, tb, alpha, beta, err)
print(_core.simd_level())
"""

# A^T B with K up to 64 and M * N >= 65536 (small_k_gemm.h), beta 0 or 1: odd sizes at the edges
# of its blocks of rows and columns, and of its chunks of B. Prints the level, then a digest of
# the results seqkern's kernels give, which must not depend on the thread count (BLAS runs the
# rest, K = 65, beta 0.5, every product at baseline; OpenBLAS's bits can depend on where the
# threads split the rows: its Haswell kernels' do, at splits that are not multiples of 24).
SMALL_K_CHECK = """
import hashlib, itertools
import numpy as np
from seqkern import _core
digest = {}
for threads in (1, 2):
    _core.set_num_threads(threads)
    rng = np.random.default_rng(1)
    h = hashlib.sha256()
    for M, N, K in ((256, 256, 1), (1023, 257, 31), (257, 4099, 64), (2048, 40, 7), (64, 1024, 64),
                    (700, 300, 65)):
        a = rng.standard_normal((K, M)).astype(np.float32)
        b = rng.standard_normal((K, N)).astype(np.float32)
        want = a.T.astype(np.float64) @ b.astype(np.float64)
        for alpha, beta in ((1.0, 0.0), (0.5, 0.0), (1.0, 1.0), (-2.0, 1.0), (1.0, 0.5)):
            c0 = rng.standard_normal((M, N)).astype(np.float32)
            c = np.full((M, N), np.nan, np.float32) if beta == 0 else c0.copy()
            _core.gemm(True, False, alpha, a, b, beta, c)
            err = np.abs(c - (alpha * want + beta * c0)).max()
            assert err <= 1e-5 * np.sqrt(K + 1) * (abs(alpha) + abs(beta)), (M, N, K, alpha, beta, err)
            if K <= 64 and beta in (0.0, 1.0):  # BLAS runs the others
                h.update(c.tobytes())
    digest[threads] = h.hexdigest()
assert digest[1] == digest[2] or _core.simd_level() == "baseline", digest
print(_core.simd_level(), digest[1])
"""

# Up to 32 rows against a B of 2 MB or more, both layouts, or of 256 KB and 512 columns or more
# stored (N, K) (in_place_gemm.h, level avx512; BLAS below, and few_rows_gemm.h up to 8 rows of
# B (N, K)): edges of its 12-row blocks, 32-column
# slices, 16 x 16 tiles and 48-deep chunks of k; a B of 17.2 MB, which the kernels read as from
# memory (kFromMemoryBytes). Where those kernels run, checks that each row's values do not depend
# on the rows beside it, nor on the thread count.
IN_PLACE_CHECK = """
import itertools
import numpy as np
from seqkern import _core
rng = np.random.default_rng(2)
shapes = ((5, 1000, 600), (12, 1009, 520), (13, 48, 11000), (31, 49, 11000), (32, 2048, 290),
          (9, 17, 31000), (33, 1000, 600), (1, 1000, 600), (20, 130, 600), (9, 64, 1100),
          (32, 300, 511), (12, 1024, 4200))
for (M, K, N), tb in itertools.product(shapes, (False, True)):
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
    want = a.astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    for alpha, beta in ((1.0, 0.0), (0.5, 0.0), (1.0, 1.0), (-2.0, 1.5)):
        c0 = rng.standard_normal((M, N)).astype(np.float32)
        got = {}
        for threads in (1, 2):
            _core.set_num_threads(threads)
            c = np.full((M, N), np.nan, np.float32) if beta == 0 else c0.copy()
            _core.gemm(False, tb, alpha, a, b, beta, c)
            got[threads] = c
        err = np.abs(got[1] - (alpha * want + beta * c0)).max()
        assert err <= 1e-5 * np.sqrt(K + 1) * (abs(alpha) + abs(beta)), (M, K, N, tb, alpha, err)
        in_place = (_core.simd_level() == "avx512" and (8 if tb else 4) < M <= 32
                    and (K * N * 4 >= 2 << 20 or tb and K * N * 4 >= 256 << 10 and N >= 512))
        if not in_place:
            continue
        np.testing.assert_array_equal(got[1], got[2])
        if beta == 0:  # a row alone, with 8 more: the same bits
            rows = a[[M // 2] + [i % M for i in range(8)]]
            alone = np.empty((9, N), np.float32)
            _core.gemm(False, tb, alpha, rows, b, 0.0, alone)
            np.testing.assert_array_equal(alone[0], got[1][M // 2])
print(_core.simd_level())
"""

# Products of moderate size (up to 2^27 multiply-adds; B (N, K) from 9 rows, with 48 columns
# below 128 rows and 256 below 32; B (K, N) from 32 rows and 2^21; A^T from 2^21, up to 256
# rows) run on the packed micro-kernels at level avx512 (gemm.cc): edges of their 16-column
# panels and 12-row blocks, slices of k past 256, rows 2 KB apart (packed before the product),
# the threads sharing the columns or (below 4 panels a thread) the rows. Where those kernels
# run, each result must keep its bits on any thread count (BLAS's change with the split).
PACKED_CHECK = """
import hashlib, itertools
import numpy as np
from seqkern import _core
shapes = ((9, 300, 17), (13, 257, 33), (20, 512, 130), (40, 129, 64), (100, 600, 300),
          (257, 65, 48), (600, 100, 16), (128, 520, 256), (64, 64, 1100), (256, 200, 48),
          (50, 70, 49), (31, 64, 256), (300, 40, 13))
digest = {}
for threads in (1, 2):
    _core.set_num_threads(threads)
    rng = np.random.default_rng(3)
    h = hashlib.sha256()
    for (M, K, N), ta, tb in itertools.product(shapes, (False, True), (False, True)):
        a = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
        b = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
        want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
        for alpha, beta in ((1.0, 0.0), (0.5, 0.0), (1.0, 1.0), (-2.0, 1.5)):
            c0 = rng.standard_normal((M, N)).astype(np.float32)
            c = np.full((M, N), np.nan, np.float32) if beta == 0 else c0.copy()
            _core.gemm(ta, tb, alpha, a, b, beta, c)
            err = np.abs(c - (alpha * want + beta * c0)).max()
            assert err <= 1e-5 * np.sqrt(K + 1) * (abs(alpha) + abs(beta)), (M, K, N, ta, tb, alpha, beta, err)
            work = M * N * K
            in_place = not ta and M <= 32 and (K * N * 4 >= 2 << 20 or tb and K * N * 4 >= 256 << 10 and N >= 512)
            if ta:
                packed = M >= (9 if tb else 32) and M <= 256 and work >= 1 << 21
            elif tb:
                packed = M >= 9 and (M >= 128 or N >= (256 if M < 32 else 48))
            else:
                packed = M >= 32 and work >= 1 << 21
            if _core.simd_level() == "avx512" and not in_place and packed and work <= 1 << 27:
                h.update(c.tobytes())
    digest[threads] = h.hexdigest()
assert digest[1] == digest[2], digest
print(_core.simd_level())
"""


@pytest.mark.parametrize("level", LEVELS)
def test_moderate_products_match_numpy_at_every_level(level, tmp_path):
    assert run_at_level(level, PACKED_CHECK, tmp_path).strip().endswith(level)


@pytest.mark.parametrize("level", LEVELS)
def test_rows_against_large_b_match_numpy_at_every_level(level, tmp_path):
    assert run_at_level(level, IN_PLACE_CHECK, tmp_path).strip().endswith(level)


@pytest.mark.parametrize("level", LEVELS)
def test_short_sums_match_numpy_at_every_level(level, tmp_path):
    assert run_at_level(level, SMALL_K_CHECK, tmp_path).split()[-2] == level


def test_short_sums_give_the_same_bits_at_every_level(tmp_path):
    levels = [lv for lv in LEVELS if lv != "baseline" and lv in _core.simd_levels().split(",")]
    if len(levels) < 2:
        pytest.skip("one SIMD level above baseline on this machine")
    digests = {run_at_level(lv, SMALL_K_CHECK, tmp_path).split()[-1] for lv in levels}
    assert len(digests) == 1, levels


@pytest.mark.parametrize("level", LEVELS)
def test_products_match_numpy_at_every_level(level, tmp_path):
    assert run_at_level(level, GEMM_CHECK, tmp_path).strip().endswith(level)


@pytest.mark.parametrize("M,K,N", [(3, 40, 300), (20, 300, 300), (64, 300, 64), (700, 300, 1000)])
@pytest.mark.parametrize("ta", [False, True])
def test_alpha_zero_reads_neither_operand(M, K, N, ta):
    """BLAS's rule on every path (few rows, in place, packed, BLAS): alpha 0 gives beta * C,
    whatever A and B hold."""
    a = np.full((K, M) if ta else (M, K), np.nan, np.float32)
    b = np.full((K, N), np.inf, np.float32)
    c = np.random.default_rng(0).standard_normal((M, N)).astype(np.float32)
    want = 0.5 * c
    _core.gemm(ta, False, 0.0, a, b, 0.5, c)
    np.testing.assert_array_equal(c, want)


@pytest.mark.parametrize("K,N", [(37, 300), (600, 4000), (1024, 4100)],
                         ids=["B cached", "B of 9.6 MB", "B of 16.8 MB"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B (K, N)", "B (N, K)"])
@pytest.mark.parametrize("M", range(2, 10))
def test_few_rows_give_each_row_its_values_alone(M, trans_b, K, N):
    """Each row of C is the same bits whatever rows share its product (up to kFewRowsNK rows for
    B (N, K), kFewRowsKN for B (K, N)): a batch of a few sequences gives each the values it gets
    alone. Alone means one row for B (N, K), and two (the row twice) for B (K, N), whose single
    rows go to BLAS's GEMV. B (N, K) of 9.6 MB (over 4 MB a thread) takes the blocks for B from
    L3, of 16.8 MB those for B from memory (its rows one after another), the small B those for B
    in cache; K = 37 has several rows of A copied to 64-byte boundaries, one row read in place.
    The values match NumPy's."""
    if _core.simd_level() == "baseline":
        pytest.skip("BLAS runs every product at level baseline")
    rng = np.random.default_rng(M)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
    c = np.empty((M, N), np.float32)
    _core.gemm(False, trans_b, 1.0, a, b, 0.0, c)
    want = a.astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
    np.testing.assert_allclose(c, want, rtol=0, atol=1e-5 * np.sqrt(K + 1))
    for m in range(M):
        alone = a[m:m + 1] if trans_b else a[[m, m]]
        row = np.empty((len(alone), N), np.float32)
        _core.gemm(False, trans_b, 1.0, alone, b, 0.0, row)
        if M <= (8 if trans_b else 4):
            np.testing.assert_array_equal(row[0], c[m])
        else:  # BLAS beyond: the same values to rounding, each as close to NumPy's as c
            np.testing.assert_allclose(row[0], want[m], rtol=0, atol=1e-5 * np.sqrt(K + 1))
