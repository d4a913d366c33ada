//! The measures of docs/design.md §5 that are plain arithmetic: PSNR between frames, and the
//! normalised mutual information between latent codes and true actions.

/// Peak signal-to-noise ratio in dB between two u8 images of equal size (peak 255). Identical
/// images give +∞; callers that average should cap it (see [`psnr_capped`]).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images differ in size");
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let mse = se / a.len().max(1) as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// PSNR capped at 100 dB, so identical frames do not make a mean infinite.
pub fn psnr_capped(a: &[u8], b: &[u8]) -> f64 {
    psnr(a, b).min(100.0)
}

/// Normalised mutual information NMI(X; Y) = I(X; Y) / √(H(X)·H(Y)) of paired labels, in [0, 1];
/// 0 when either labelling is constant.
pub fn nmi(xs: &[usize], ys: &[usize]) -> f64 {
    assert_eq!(xs.len(), ys.len(), "label lists differ in length");
    let n = xs.len() as f64;
    if xs.is_empty() {
        return 0.0;
    }
    let kx = xs.iter().max().map_or(0, |m| m + 1);
    let ky = ys.iter().max().map_or(0, |m| m + 1);
    let mut joint = vec![0.0f64; kx * ky];
    let (mut px, mut py) = (vec![0.0f64; kx], vec![0.0f64; ky]);
    for (&x, &y) in xs.iter().zip(ys) {
        joint[x * ky + y] += 1.0;
        px[x] += 1.0;
        py[y] += 1.0;
    }
    let entropy = |p: &[f64]| -> f64 {
        p.iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -(c / n) * (c / n).ln())
            .sum()
    };
    let (hx, hy) = (entropy(&px), entropy(&py));
    if hx <= 0.0 || hy <= 0.0 {
        return 0.0;
    }
    let mut mi = 0.0;
    for x in 0..kx {
        for y in 0..ky {
            let c = joint[x * ky + y];
            if c > 0.0 {
                mi += (c / n) * ((c * n) / (px[x] * py[y])).ln();
            }
        }
    }
    (mi / (hx * hy).sqrt()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_a_known_error() {
        let a = vec![100u8; 64];
        let b = vec![110u8; 64]; // MSE 100 → 10·log10(65025/100) = 28.13 dB
        assert!((psnr(&a, &b) - 28.1308).abs() < 1e-3);
        assert_eq!(psnr_capped(&a, &a), 100.0);
    }

    #[test]
    fn nmi_is_one_for_a_relabelling_and_zero_for_independence() {
        let xs = [0, 0, 1, 1, 2, 2];
        let ys = [5, 5, 3, 3, 0, 0];
        assert!((nmi(&xs, &ys) - 1.0).abs() < 1e-12);
        let xs = [0, 0, 1, 1];
        let ys = [0, 1, 0, 1];
        assert!(nmi(&xs, &ys).abs() < 1e-12);
        assert_eq!(nmi(&[0, 0, 0], &[1, 2, 3]), 0.0);
    }

    #[test]
    fn nmi_of_a_partial_agreement_is_between() {
        let xs = [0, 0, 0, 1, 1, 1];
        let ys = [0, 0, 1, 1, 1, 1];
        let v = nmi(&xs, &ys);
        assert!(v > 0.1 && v < 0.9, "{v}");
    }
}
