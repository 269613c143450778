//! The statistics `blast compare` rests on, apart from what they compare: block-bootstrap
//! weights, percentile intervals, the Mann-Whitney U test, autocorrelation. Checked against
//! SciPy on fixed data (tests/fixtures/compare_reference.py).

/// The sample autocorrelation of `x` at `lag`.
pub(crate) fn autocorrelation(x: &[f64], lag: usize) -> f64 {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let var: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
    if var == 0.0 || lag >= n {
        return 0.0;
    }
    let cov: f64 = (0..n - lag)
        .map(|i| (x[i] - mean) * (x[i + lag] - mean))
        .sum();
    cov / var
}

/// Moving-block bootstrap weights over runs laid out as (offset, intervals, block): with one
/// run, blocks of its intervals until the run's length is covered; with several, as many runs
/// drawn with replacement, each then resampled so.
pub(crate) fn resample(
    layout: &[(usize, usize, usize)],
    rng: &mut fastrand::Rng,
    weights: &mut [u32],
) {
    weights.fill(0);
    for _ in 0..layout.len() {
        let (at, n, block) = match layout.len() {
            1 => layout[0],
            k => layout[rng.usize(..k)],
        };
        let mut left = n;
        while left > 0 {
            let start = rng.usize(..=n - block);
            let take = block.min(left);
            for w in &mut weights[at + start..at + start + take] {
                *w += 1;
            }
            left -= take;
        }
    }
}

/// The `q` quantile of sorted values, interpolated linearly (NumPy's default, as SciPy's
/// percentile bootstrap reads its resamples).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// The percentile interval at `level` of bootstrap values.
pub(crate) fn percentile_interval(mut values: Vec<f64>, level: f64) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some((
        quantile_sorted(&values, tail),
        quantile_sorted(&values, 1.0 - tail),
    ))
}

/// The two-sided p-value of the Mann-Whitney U test by its normal approximation, with the tie
/// and continuity corrections (as SciPy's `mannwhitneyu(method="asymptotic")`); `None` with
/// fewer than 3 values on a side.
pub(crate) fn mann_whitney(x: &[f64], y: &[f64]) -> Option<f64> {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    if x.len() < 3 || y.len() < 3 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len() as f64;
    let (mut rank_x, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let j = (i..all.len())
            .find(|&j| all[j].0 != all[i].0)
            .unwrap_or(all.len());
        let t = (j - i) as f64;
        let rank = (i + j + 1) as f64 / 2.0;
        rank_x += rank * all[i..j].iter().filter(|(_, from_x)| *from_x).count() as f64;
        ties += t * t * t - t;
        i = j;
    }
    let u = rank_x - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    Some(erfc(z / std::f64::consts::SQRT_2).min(1.0))
}

/// The complementary error function, to about 1e-7 relative (Numerical Recipes' Chebyshev
/// fit).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bootstrap of one sample's mean under these weights, as a side of one run with
    /// blocks of one (plain resampling with replacement).
    fn mean_interval(x: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
        let layout = [(0, x.len(), 1)];
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut w = vec![0; x.len()];
        let means = (0..resamples)
            .map(|_| {
                resample(&layout, &mut rng, &mut w);
                let n: u32 = w.iter().sum();
                x.iter().zip(&w).map(|(v, w)| v * *w as f64).sum::<f64>() / n as f64
            })
            .collect();
        percentile_interval(means, 0.95).unwrap()
    }

    #[test]
    fn blocks_are_consecutive_intervals_and_cover_the_run() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut w = vec![0; 10];
        for _ in 0..100 {
            resample(&[(0, 10, 3)], &mut rng, &mut w);
            assert_eq!(w.iter().sum::<u32>(), 10);
        }
        // Two runs of 4 and 6 intervals: each draw covers the length of the runs drawn.
        let layout = [(0, 4, 2), (4, 6, 2)];
        let mut w = vec![0; 10];
        for _ in 0..100 {
            resample(&layout, &mut rng, &mut w);
            let total: u32 = w.iter().sum();
            assert!([8, 10, 12].contains(&total), "{w:?}");
        }
    }

    /// Reference figures computed once with SciPy 1.17.1 (tests/fixtures/compare_reference.py).
    #[test]
    fn intervals_and_p_values_agree_with_scipy() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/compare_reference.json")).unwrap();
        let nums = |k: &str| -> Vec<f64> {
            fixture[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        // Within half a unit of the reference's third significant digit.
        let three_digits = |ours: f64, theirs: f64, what: &str| {
            let unit = 10f64.powf(theirs.abs().log10().floor() - 2.0);
            assert!(
                (ours - theirs).abs() <= unit / 2.0,
                "{what}: blast {ours} against SciPy {theirs}"
            );
        };
        let (x, y) = (nums("x"), nums("y"));
        let ci = nums("mean_ci_x");
        let ours = mean_interval(&x, 200_000, 7);
        eprintln!("the mean's 95% interval: blast {ours:?}, SciPy {ci:?}");
        three_digits(ours.0, ci[0], "the mean's interval, low");
        three_digits(ours.1, ci[1], "the mean's interval, high");
        eprintln!(
            "U test p: blast {:?} and {:?}, SciPy {} and {}",
            mann_whitney(&x, &y),
            mann_whitney(&nums("ties_x"), &nums("ties_y")),
            fixture["mannwhitneyu_p"],
            fixture["mannwhitneyu_ties_p"]
        );
        three_digits(
            mann_whitney(&x, &y).unwrap(),
            fixture["mannwhitneyu_p"].as_f64().unwrap(),
            "the U test",
        );
        let (t1, t2) = (nums("ties_x"), nums("ties_y"));
        three_digits(
            mann_whitney(&t1, &t2).unwrap(),
            fixture["mannwhitneyu_ties_p"].as_f64().unwrap(),
            "the U test with ties",
        );
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122),
            (1.0, 0.157_299_207),
            (2.0, 0.004_677_735),
        ] {
            assert!((erfc(x) - want).abs() < 1e-6 * want.max(1e-3), "erfc({x})");
        }
    }
}
