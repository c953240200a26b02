#!/usr/bin/env python3
"""Fits the polynomial coefficients used by base/math.h.

Each polynomial is a weighted minimax fit found by the Remez exchange on a dense grid,
in 60-digit arithmetic (mpmath). The coefficients are then rounded to the target format
one at a time, lowest degree first, refitting the remaining ones after each rounding so
the later terms absorb the rounding of the earlier ones.

    python3 tools/gen_math_coeffs.py          # prints every table as C++ hex literals

The printed error is that of the rounded polynomial evaluated exactly; the rounding of
the evaluation itself is measured by tests/kernels/test_math.cpp.
"""
import mpmath as mp

mp.mp.dps = 60


def remez(basis, target, weight, lo, hi, grid_size=3000, iterations=40):
    """Coefficients c minimising max |weight(x) * (target(x) - sum c_j basis_j(x))|."""
    n = len(basis)
    # Chebyshev-spaced grid: the error of a good fit oscillates fastest near the ends.
    grid = [lo + (hi - lo) * (1 - mp.cos(mp.pi * i / (grid_size - 1))) / 2 for i in range(grid_size)]
    grid = [x for x in grid if weight(x) != 0]
    f = [target(x) for x in grid]
    w = [weight(x) for x in grid]
    phi = [[b(x) for b in basis] for x in grid]
    ref = [int(round(i * (len(grid) - 1) / n)) for i in range(n + 1)]
    best = None
    for _ in range(iterations):
        # Solve sum c_j phi_j(x_i) + (-1)^i E / w(x_i) = f(x_i) on the reference set.
        a = mp.matrix(n + 1, n + 1)
        b = mp.matrix(n + 1, 1)
        for row, i in enumerate(ref):
            for j in range(n):
                a[row, j] = phi[i][j]
            a[row, n] = (-1) ** row / w[i]
            b[row] = f[i]
        sol = mp.lu_solve(a, b)
        coeffs = [sol[j] for j in range(n)]
        err = [w[i] * (f[i] - mp.fsum(c * p for c, p in zip(coeffs, phi[i]))) for i in range(len(grid))]
        max_err = max(abs(e) for e in err)
        # The exchange can cycle once rounding noise flips the sign of tiny errors: keep
        # the best fit seen, and stop when the error is levelled (max = reference error).
        if best is None or max_err < best[1]:
            best = (coeffs, max_err)
        if max_err <= abs(sol[n]) * (1 + mp.mpf("1e-6")):
            break
        # New reference: the largest |err| in each run of one sign, keeping n + 1 of them.
        runs = []
        start = 0
        for i in range(1, len(grid) + 1):
            if i == len(grid) or mp.sign(err[i]) != mp.sign(err[start]):
                peak = max(range(start, i), key=lambda k: abs(err[k]))
                runs.append(peak)
                start = i
        while len(runs) > n + 1:
            # More alternations than needed: drop whichever end has the smaller error.
            if abs(err[runs[0]]) < abs(err[runs[-1]]):
                runs.pop(0)
            else:
                runs.pop()
        if len(runs) < n + 1:
            break
        if runs == ref:
            break
        ref = runs
    return best


def round_to_bits(x, bits):
    """x rounded to the nearest number with `bits` significant bits."""
    if x == 0:
        return mp.mpf(0)
    m, e = mp.frexp(x)
    return mp.ldexp(mp.nint(m * 2**bits), e - bits)


def fit_rounded(basis, target, weight, lo, hi, bits):
    """Fits, then rounds coefficient 0, refits 1.., rounds 1, ... so roundings are absorbed."""
    fixed = []
    for j in range(len(basis)):
        done = list(fixed)

        def rest_target(x, done=done):
            return target(x) - mp.fsum(c * basis[k](x) for k, c in enumerate(done))

        coeffs, _ = remez(basis[j:], rest_target, weight, lo, hi)
        fixed.append(round_to_bits(coeffs[0], bits))
    grid = [lo + (hi - lo) * i / 4000 for i in range(4001)]
    err = max(abs(weight(x) * (target(x) - mp.fsum(c * b(x) for c, b in zip(fixed, basis)))) for x in grid)
    return fixed, err


def hex_literal(x, bits):
    h = float(x).hex()  # exact: x has at most 53 significant bits
    mant, exp = h.split("p")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    return mant + "p" + exp + ("f" if bits == 24 else "")


def show(name, coeffs, err, bits):
    print(f"// {name}: max weighted error {mp.nstr(err, 3)} (2^{mp.nstr(mp.log(err, 2), 4)})")
    for j, c in enumerate(coeffs):
        print(f"  c{j} = {hex_literal(c, bits)}")


def series_safe(f, small):
    """f(x), or its Taylor series `small(x)` near 0 where f cancels catastrophically."""
    return lambda x: small(x) if abs(x) < mp.mpf("1e-12") else f(x)


def monomials(first, count):
    return [(lambda k: (lambda x: x**k))(k) for k in range(first, first + count)]


def main():
    ln2 = mp.log(2)

    # exp: e^r = 1 + r + r^2 Q(r) on |r| <= ln2/2 (+ margin for the rounding of k);
    # relative error, so weight 1/e^r. The basis is r^2, r^3, ...
    r_max = mp.mpf("0.35")
    for bits, degree in ((24, 6), (53, 11)):
        basis = monomials(2, degree - 1)
        target = lambda r: mp.exp(r) - 1 - r
        c, e = fit_rounded(basis, target, lambda r: 1 / mp.exp(r), -r_max, r_max, bits)
        show(f"exp degree {degree}, {bits}-bit, r^2..", c, e, bits)

    # log: log1p(f) = f - hfsq + s (hfsq + R(z)), s = f / (2 + f), z = s^2, where
    # R(z) = 2 atanh(s)/s - 2. |s| <= (sqrt2 - 1)/(sqrt2 + 1); R's absolute error times s
    # lands in a result of about 2s, so fit R with weight 1.
    z_max = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2 * mp.mpf("1.01")
    big_r = series_safe(lambda z: 2 * mp.atanh(mp.sqrt(z)) / mp.sqrt(z) - 2,
                        lambda z: 2 * z / 3 + 2 * z**2 / 5)
    for bits, degree in ((24, 3), (53, 7)):
        c, e = fit_rounded(monomials(1, degree), big_r, lambda z: 1, mp.mpf(0), z_max, bits)
        show(f"log R(z) degree {degree}, {bits}-bit, z^1..", c, e, bits)

    # tanh on |x| < 9/16: x + x^3 P(x^2). With z = x^2 the relative error of the result
    # is z * (error of P), so weight z.
    z_max = mp.mpf(9) / 16 * mp.mpf(9) / 16 * mp.mpf("1.0001")
    p_tanh = series_safe(lambda z: (mp.tanh(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)),
                         lambda z: -mp.mpf(1) / 3 + 2 * z / 15)
    for bits, degree in ((24, 5), (53, 11)):
        c, e = fit_rounded(monomials(0, degree), p_tanh, lambda z: z, mp.mpf(0), z_max, bits)
        show(f"tanh P(z) {degree} terms, {bits}-bit, z^0..", c, e, bits)

    # sin / cos on |r| <= 13/16 (pi/4 plus the slack of a float k for |x| <= 2^19).
    z_max = (mp.mpf(13) / 16) ** 2
    s_poly = series_safe(lambda z: (mp.sin(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)),
                         lambda z: -mp.mpf(1) / 6 + z / 120)
    c_poly = series_safe(lambda z: (mp.cos(mp.sqrt(z)) - 1 + z / 2) / (z * z),
                         lambda z: mp.mpf(1) / 24 - z / 720)
    c, e = fit_rounded(monomials(0, 4), s_poly, lambda z: z, mp.mpf(0), z_max, 24)
    show("sin S(z) 4 terms, 24-bit, z^0..", c, e, 24)
    c, e = fit_rounded(monomials(0, 4), c_poly, lambda z: z * z, mp.mpf(0), z_max, 24)
    show("cos C(z) 4 terms, 24-bit, z^0..", c, e, 24)

    # The constants of the range reductions: a value, then the rounded remainders.
    def split(value, bits, parts):
        out, rest = [], value
        for _ in range(parts):
            p = round_to_bits(rest, bits)
            out.append(p)
            rest -= p
        return out, rest

    for name, value, bits, parts in (("ln2", ln2, 24, 2), ("ln2", ln2, 53, 2),
                                     ("pi/2", mp.pi / 2, 24, 3)):
        parts_v, tail = split(value, bits, parts)
        lits = ", ".join(hex_literal(p, bits) for p in parts_v)
        print(f"// {name} in {parts} parts of {bits} bits: {lits}  (tail {mp.nstr(tail, 3)})")
    for name, value in (("log2(e)", 1 / ln2), ("2/pi", 2 / mp.pi)):
        f32, f64 = (hex_literal(round_to_bits(value, b), b) for b in (24, 53))
        print(f"// {name}: {f32}  {f64}")


if __name__ == "__main__":
    main()
