//! Forward error correction of the multicast broadcast (as udpcast's `--fec` and Frisbee): each chunk's
//! pieces are cut into blocks of `k`, and after a block's data the sender sends `m` repair pieces, a
//! systematic Reed–Solomon erasure code over GF(2^8) with a Cauchy matrix. A receiver that lost at
//! most as many of a block's data pieces as it got repair pieces rebuilds them without asking.
//!
//! Repair `j` of a block is `Σ_i C[j][i] · d_i` (bytes, in GF(2^8) with the polynomial 0x11d), with
//! `C[j][i] = 1 / (x_j + y_i)`, `x_j = j`, `y_i = MAX_M + i`: every square sub-matrix of a Cauchy
//! matrix is invertible, so any `e` repairs rebuild any `e` lost data pieces. A block shorter than
//! `k` (the chunk's last) uses the first columns; a shorter last piece counts as zero-padded.

use serde::{Deserialize, Serialize};

/// Data pieces per block at most.
pub const MAX_K: u16 = 128;
/// Repair pieces per block at most.
pub const MAX_M: u16 = 32;

/// Why a code's setting or a recovery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FecError {
    /// `k/m` out of range or unreadable.
    #[error(
        "forward error correction {0:?}: expected k/m with 1 <= k <= {MAX_K}, 1 <= m <= min(k, {MAX_M})"
    )]
    Setting(String),
    /// Fewer repair pieces than lost data pieces, or pieces of the wrong size.
    #[error("block not recoverable: {0}")]
    Unrecoverable(&'static str),
}

impl FecError {
    /// The error's kind.
    pub fn kind(&self) -> FecErrorKind {
        match self {
            FecError::Setting(_) => FecErrorKind::Setting,
            FecError::Unrecoverable(_) => FecErrorKind::Unrecoverable,
        }
    }
}

/// What kind of [`FecError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FecErrorKind {
    /// A bad setting.
    Setting,
    /// A block that cannot be rebuilt from what arrived.
    Unrecoverable,
}

/// A forward error correction setting: `m` repair pieces per block of `k` data pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fec {
    /// Data pieces per block.
    pub k: u16,
    /// Repair pieces per block.
    pub m: u16,
}

impl Fec {
    /// A checked setting.
    pub fn new(k: u16, m: u16) -> Result<Fec, FecError> {
        Fec { k, m }.checked()
    }

    /// The setting if it is within bounds (a deserialized one must pass here before use).
    pub fn checked(self) -> Result<Fec, FecError> {
        if (1..=MAX_K).contains(&self.k) && (1..=self.k.min(MAX_M)).contains(&self.m) {
            Ok(self)
        } else {
            Err(FecError::Setting(format!("{}/{}", self.k, self.m)))
        }
    }

    /// Parses `k/m` (e.g. `32/2`).
    pub fn parse(s: &str) -> Result<Fec, FecError> {
        let bad = || FecError::Setting(s.to_string());
        let (k, m) = s.split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse().map_err(|_| bad())?;
        let m = m.trim().parse().map_err(|_| bad())?;
        Fec::new(k, m)
    }

    /// Blocks of a chunk of `pieces` pieces.
    pub fn blocks(&self, pieces: usize) -> usize {
        pieces.div_ceil(usize::from(self.k.max(1)))
    }

    /// The data pieces `first..end` of block `block` in a chunk of `pieces` pieces.
    pub fn block_range(&self, block: usize, pieces: usize) -> std::ops::Range<usize> {
        let k = usize::from(self.k.max(1));
        let first = (block * k).min(pieces);
        first..(first + k).min(pieces)
    }

    /// The wire code of repair `index` of block `block` (one u16: `block * m + index`).
    pub fn code(&self, block: usize, index: usize) -> Option<u16> {
        u16::try_from(block * usize::from(self.m) + index).ok()
    }

    /// The (block, index) of a wire code, if it names a repair of a chunk of `pieces` pieces.
    pub fn decode_code(&self, code: u16, pieces: usize) -> Option<(usize, usize)> {
        let m = usize::from(self.m.max(1));
        let (block, index) = (usize::from(code) / m, usize::from(code) % m);
        (block < self.blocks(pieces)).then_some((block, index))
    }
}

impl std::fmt::Display for Fec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.m)
    }
}

/// Logarithms and powers of 2 in GF(2^8) (polynomial x^8 + x^4 + x^3 + x^2 + 1).
const fn tables() -> ([u8; 256], [u8; 512]) {
    let mut log = [0u8; 256];
    let mut exp = [0u8; 512];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x as u8;
        exp[i + 255] = x as u8;
        log[x as usize] = i as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= 0x11d;
        }
        i += 1;
    }
    (log, exp)
}

const LOG: [u8; 256] = tables().0;
const EXP: [u8; 512] = tables().1;

/// Product in GF(2^8).
fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        0
    } else {
        EXP[usize::from(LOG[usize::from(a)]) + usize::from(LOG[usize::from(b)])]
    }
}

/// Inverse in GF(2^8) (of a non-zero element).
fn inv(a: u8) -> u8 {
    EXP[255 - usize::from(LOG[usize::from(a)])]
}

/// The 256 products `c · x`, for multiplying a whole piece by `c`.
fn row(c: u8) -> [u8; 256] {
    let mut r = [0u8; 256];
    for (x, out) in r.iter_mut().enumerate() {
        *out = mul(c, x as u8);
    }
    r
}

/// `out += c · src` (over the shorter of the two; the rest of `src` counts as zero).
fn mul_add(out: &mut [u8], src: &[u8], c: u8) {
    if c == 0 {
        return;
    }
    let r = row(c);
    for (o, s) in out.iter_mut().zip(src) {
        *o ^= r[usize::from(*s)];
    }
}

/// The Cauchy coefficient of data piece `i` in repair `j`.
fn coefficient(j: usize, i: usize) -> u8 {
    // x_j = j < MAX_M <= y_i = MAX_M + i < 256: distinct, so x_j + y_i (XOR) is never zero.
    inv((j as u8) ^ ((usize::from(MAX_M) + i) as u8))
}

/// Repair `j` of a block whose data pieces are `data` (at most [`MAX_K`]; the first is the longest):
/// as long as the first piece.
pub fn encode(data: &[&[u8]], j: usize) -> Vec<u8> {
    let len = data.first().map_or(0, |d| d.len());
    let mut out = vec![0u8; len];
    for (i, d) in data.iter().enumerate().take(usize::from(MAX_K)) {
        mul_add(&mut out, d, coefficient(j, i));
    }
    out
}

/// Rebuilds the data pieces of a block that are not `present`, from repairs `(j, bytes)` (each as
/// long as the block's first piece). Pieces keep their lengths; a block of more than [`MAX_K`]
/// pieces, repairs of other lengths or indices, or fewer repairs than losses are refused.
pub fn recover(
    data: &mut [&mut [u8]],
    present: &[bool],
    repairs: &[(usize, &[u8])],
) -> Result<(), FecError> {
    if data.len() != present.len() || data.len() > usize::from(MAX_K) {
        return Err(FecError::Unrecoverable("block size"));
    }
    let missing: Vec<usize> = (0..data.len()).filter(|&i| !present[i]).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if repairs.len() < missing.len() {
        return Err(FecError::Unrecoverable("fewer repairs than losses"));
    }
    let len = data.first().map_or(0, |d| d.len());
    let repairs = &repairs[..missing.len()];
    if repairs
        .iter()
        .any(|(j, r)| r.len() != len || *j >= usize::from(MAX_M))
    {
        return Err(FecError::Unrecoverable("repair of another size or index"));
    }
    // Right-hand sides: each repair less the contributions of the pieces held.
    let mut rhs: Vec<Vec<u8>> = repairs
        .iter()
        .map(|(j, r)| {
            let mut b = r.to_vec();
            for (i, d) in data.iter().enumerate().filter(|(i, _)| present[*i]) {
                mul_add(&mut b, d, coefficient(*j, i));
            }
            b
        })
        .collect();
    let e = missing.len();
    let mut a: Vec<Vec<u8>> = repairs
        .iter()
        .map(|(j, _)| missing.iter().map(|&i| coefficient(*j, i)).collect())
        .collect();
    // Gauss–Jordan on [a | rhs]: a Cauchy sub-matrix, never singular.
    for col in 0..e {
        let pivot = (col..e)
            .find(|&r| a[r][col] != 0)
            .ok_or(FecError::Unrecoverable("singular system"))?;
        a.swap(col, pivot);
        rhs.swap(col, pivot);
        let p = inv(a[col][col]);
        for x in a[col].iter_mut() {
            *x = mul(*x, p);
        }
        let scaled = row(p);
        for x in rhs[col].iter_mut() {
            *x = scaled[usize::from(*x)];
        }
        for r in 0..e {
            let f = a[r][col];
            if r == col || f == 0 {
                continue;
            }
            let (pivot_row, pivot_rhs) = (a[col].clone(), rhs[col].clone());
            for (x, y) in a[r].iter_mut().zip(&pivot_row) {
                *x ^= mul(f, *y);
            }
            mul_add(&mut rhs[r], &pivot_rhs, f);
        }
    }
    for (b, &i) in rhs.iter().zip(&missing) {
        let piece = &mut data[i];
        let n = piece.len();
        piece.copy_from_slice(&b[..n]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(count: usize, len: usize, last: usize, seed: u8) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                let l = if i + 1 == count { last } else { len };
                (0..l)
                    .map(|b| (b as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7) ^ seed)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn field_arithmetic_is_a_field() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
            assert_eq!(mul(a, 1), a);
        }
        assert_eq!(mul(0x80, 2), 0x1d, "reduction by 0x11d");
    }

    #[test]
    fn any_m_losses_of_a_block_are_rebuilt() {
        for (k, m, last) in [
            (8usize, 3usize, 1000usize),
            (5, 2, 1443),
            (1, 1, 17),
            (32, 4, 1),
        ] {
            let orig = pieces(k, 1443, last, k as u8);
            let refs: Vec<&[u8]> = orig.iter().map(|p| &p[..]).collect();
            let repairs: Vec<Vec<u8>> = (0..m).map(|j| encode(&refs, j)).collect();
            // Lose up to m pieces, in several patterns, and rebuild from the last repairs.
            for lost in 1..=m.min(k) {
                for start in 0..k {
                    let gone: Vec<usize> = (0..lost).map(|x| (start + x * 3) % k).collect();
                    let mut work = orig.clone();
                    let mut present = vec![true; k];
                    for &g in &gone {
                        work[g].iter_mut().for_each(|b| *b = 0xEE);
                        present[g] = false;
                    }
                    let used: Vec<(usize, &[u8])> =
                        (m - lost.min(m)..m).map(|j| (j, &repairs[j][..])).collect();
                    let mut slices: Vec<&mut [u8]> = work.iter_mut().map(|p| &mut p[..]).collect();
                    recover(&mut slices, &present, &used).expect("recoverable");
                    assert_eq!(work, orig, "k={k} m={m} lost {gone:?}");
                }
            }
        }
    }

    #[test]
    fn too_many_losses_or_bad_repairs_are_refused() {
        let orig = pieces(4, 100, 100, 1);
        let refs: Vec<&[u8]> = orig.iter().map(|p| &p[..]).collect();
        let r0 = encode(&refs, 0);
        let mut work = orig.clone();
        let mut slices: Vec<&mut [u8]> = work.iter_mut().map(|p| &mut p[..]).collect();
        let present = [false, false, true, true];
        let err = recover(&mut slices, &present, &[(0, &r0[..])]).unwrap_err();
        assert_eq!(err.kind(), FecErrorKind::Unrecoverable);
        let short = &r0[..50];
        let err = recover(&mut slices, &[false, true, true, true], &[(0, short)]).unwrap_err();
        assert_eq!(err.kind(), FecErrorKind::Unrecoverable);
        let err = recover(
            &mut slices,
            &[false, true, true, true],
            &[(usize::from(MAX_M), &r0[..])],
        )
        .unwrap_err();
        assert_eq!(err.kind(), FecErrorKind::Unrecoverable);
    }

    #[test]
    fn settings_are_bounded() {
        assert_eq!(Fec::parse("32/2"), Ok(Fec { k: 32, m: 2 }));
        for bad in ["0/1", "4/0", "4/5", "200/2", "64/33", "x", "3/", "1/1/1"] {
            assert_eq!(
                Fec::parse(bad).map_err(|e| e.kind()),
                Err(FecErrorKind::Setting),
                "{bad}"
            );
        }
        let f = Fec::new(16, 2).unwrap();
        assert_eq!(f.blocks(33), 3);
        assert_eq!(f.block_range(2, 33), 32..33);
        let code = f.code(2, 1).unwrap();
        assert_eq!(f.decode_code(code, 33), Some((2, 1)));
        assert_eq!(f.decode_code(u16::MAX, 33), None, "block beyond the chunk");
    }
}
