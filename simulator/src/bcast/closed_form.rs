//! Closed-form broadcast times and bounds (simulation.md §2.2), used as test oracles for the simulator.
//!
//! Notation: `S` bytes per receiver, `ρ` decompressed/compressed ratio, `N` receivers, `B` link goodput,
//! `L` one-way latency per hop, `c` chunk size, `K = ⌈S/c⌉`, `W`/`D` disk and decompression rates in
//! output bytes/s. The two `stream_*` functions are exactly what [`crate::bcast::simulate`] computes for
//! a homogeneous pipelined stream of rate `r` (chain: `r = B`; k-ary tree: `r = B/k`).

/// `K = ⌈S/c⌉`, with a non-positive or non-finite chunk meaning one chunk.
pub fn chunk_count(size: f64, chunk: f64) -> f64 {
    if chunk.is_finite() && chunk > 0.0 {
        (size / chunk).ceil()
    } else {
        1.0
    }
}

/// Physical lower bound: `max(S/B_down, S·ρ/W, S·ρ/D) + L`.
pub fn physical_lower_bound(
    size: f64,
    ratio: f64,
    b_down: f64,
    disk_write: f64,
    decompress: f64,
    latency: f64,
) -> f64 {
    let written = size * ratio;
    (size / b_down)
        .max(written / disk_write)
        .max(written / decompress)
        + latency
}

/// Fluid peer-to-peer lower bound (Kumar & Ross 2006): `max(S/u_s, S/min d_i, N·S/(u_s + Σu_i))`.
pub fn p2p_lower_bound(
    size: f64,
    n: usize,
    server_up: f64,
    min_down: f64,
    total_peer_up: f64,
) -> f64 {
    let nf = n as f64;
    (size / server_up)
        .max(size / min_down)
        .max(nf * size / (server_up + total_peer_up))
}

/// Optimal P2P broadcast in `pieces` pieces, equal upload capacities (Mundinger, Weber, Weiss 2008):
/// `(S/B)·(1 + ⌊log₂ N⌋/M)`.
pub fn optimal_p2p(size: f64, n: usize, b: f64, pieces: f64) -> f64 {
    let lg = if n == 0 { 0.0 } else { f64::from(n.ilog2()) };
    size / b * (1.0 + lg / pieces)
}

/// Sequential unicast from the server: `N·S/B_server`.
pub fn sequential_unicast(size: f64, n: usize, b_server: f64) -> f64 {
    n as f64 * size / b_server
}

/// Textbook pipelined chain, chunked store-and-forward: `(K + N − 1)·(c/B + L)`.
pub fn chain_store_and_forward(size: f64, chunk: f64, n: usize, b: f64, latency: f64) -> f64 {
    (chunk_count(size, chunk) + n as f64 - 1.0) * (chunk / b + latency)
}

/// Its usual approximation: `S/B + (N − 1)·(c/B + L)`.
pub fn chain_approx(size: f64, chunk: f64, n: usize, b: f64, latency: f64) -> f64 {
    size / b + (n as f64 - 1.0) * (chunk / b + latency)
}

/// Chunk minimising [`chain_approx`]: `c* = √(S·L·B/(N − 1))`.
pub fn chain_optimal_chunk(size: f64, n: usize, b: f64, latency: f64) -> f64 {
    (size * latency * b / (n as f64 - 1.0)).sqrt()
}

/// Chain time with the optimal chunk: `(√(S/B) + √((N − 1)·L))²`.
pub fn chain_optimal_time(size: f64, n: usize, b: f64, latency: f64) -> f64 {
    ((size / b).sqrt() + ((n as f64 - 1.0) * latency).sqrt()).powi(2)
}

/// Sustainable rate of a pipeline node in compressed bytes/s: `min(B_down, B_up/k, F, D/ρ, W/ρ)`
/// (`children = 0`: a leaf, its upload does not count).
pub fn node_rate(
    b_down: f64,
    b_up: f64,
    children: u32,
    forward: f64,
    decompress: f64,
    disk_write: f64,
    ratio: f64,
) -> f64 {
    let up = if children == 0 {
        f64::INFINITY
    } else {
        b_up / f64::from(children)
    };
    b_down
        .min(up)
        .min(forward)
        .min(decompress / ratio)
        .min(disk_write / ratio)
}

/// Heterogeneous chain: `S / min_i r_i + (N − 1)·δ`.
pub fn chain_heterogeneous(size: f64, min_rate: f64, n: usize, per_hop_delay: f64) -> f64 {
    size / min_rate + (n as f64 - 1.0) * per_hop_delay
}

/// Pipelined k-ary tree: `k·S/B + depth·(k·c/B + L)`.
pub fn pipelined_tree(size: f64, chunk: f64, arity: u32, depth: u32, b: f64, latency: f64) -> f64 {
    let k = f64::from(arity.max(1));
    k * size / b + f64::from(depth) * (k * chunk / b + latency)
}

/// Depth of the last of `n` receivers in a heap-numbered k-ary tree whose root (the server) has `k`
/// children: receiver `i` is node `i + 1`, node `m`'s parent is `(m − 1)/k`.
pub fn tree_depth(n: usize, arity: u32) -> u32 {
    let k = arity.max(1) as usize;
    let (mut m, mut depth) = (n, 0);
    while m > 0 {
        m = (m - 1) / k;
        depth += 1;
    }
    depth
}

/// Non-pipelined binomial tree: `⌈log₂(N + 1)⌉·(S/B + L)`.
pub fn binomial_tree(size: f64, n: usize, b: f64, latency: f64) -> f64 {
    // ⌈log₂(N + 1)⌉ is the number of bits of N.
    f64::from(usize::BITS - n.leading_zeros()) * (size / b + latency)
}

/// Scatter + ring allgather over `p` processes: `(lg p + p − 1)·L + 2·((p − 1)/p)·S/B`.
pub fn scatter_allgather(size: f64, p: usize, b: f64, latency: f64) -> f64 {
    let pf = p.max(1) as f64;
    (pf.log2() + pf - 1.0) * latency + 2.0 * ((pf - 1.0) / pf) * size / b
}

/// Lossless multicast: `S / min(B, min_i r_i)`, independent of N (control traffic ignored).
pub fn multicast(size: f64, b: f64, min_rate: f64) -> f64 {
    size / b.min(min_rate)
}

/// Multicast with NACK/ARQ, iid loss `p`: expected transmissions per packet
/// `E = Σ_{k≥0} [1 − (1 − p^k)^N]`.
pub fn multicast_expected_transmissions(loss: f64, n: usize) -> f64 {
    if loss.is_nan() || loss <= 0.0 {
        return 1.0;
    }
    if loss >= 1.0 {
        return f64::INFINITY;
    }
    let mut e = 1.0;
    for k in 1..100_000 {
        let term = -(n as f64 * (-loss.powi(k)).ln_1p()).exp_m1();
        e += term;
        if term < 1e-16 {
            break;
        }
    }
    e
}

/// Probability that a FEC stripe of `data` blocks plus `parity` blocks is lost (more than `parity`
/// of its blocks lost, each with probability `loss`).
pub fn fec_stripe_failure(data: u16, parity: u16, loss: f64) -> f64 {
    let m = u32::from(data) + u32::from(parity);
    let mut binom = 1.0;
    let mut total = 0.0;
    for j in 0..=m {
        if j > u32::from(parity) {
            total += binom * loss.powf(f64::from(j)) * (1.0 - loss).powf(f64::from(m - j));
        }
        binom = binom * f64::from(m - j) / f64::from(j + 1);
    }
    total
}

/// The simulator's PerConnection stream: a receiver `h` hops from the server, each hop storing and
/// forwarding one chunk and paying its latency once: `S/r + h·(c/r + L)`.
pub fn stream_per_connection(size: f64, chunk: f64, rate: f64, hops: u32, latency: f64) -> f64 {
    size / rate + f64::from(hops) * (chunk / rate + latency)
}

/// The simulator's PerChunk stream (stop-and-wait chunks): `(K + h − 1)·(c/r + L)`.
pub fn stream_per_chunk(size: f64, chunk: f64, rate: f64, hops: u32, latency: f64) -> f64 {
    (chunk_count(size, chunk) + f64::from(hops) - 1.0) * (chunk / rate + latency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bcast::testkit::{B, L, MIB, rel};

    const S: f64 = 1e9;

    #[test]
    fn worked_example_of_section_2_3() {
        let n = 300;
        assert!(rel(S / B, 8.50) < 1e-3);
        assert!(rel(chain_approx(S, MIB, n, B, L), 11.19) < 1e-3);
        assert!(rel(chain_optimal_chunk(S, n, B, L), 198e3) < 3e-3);
        assert!(rel(chain_optimal_time(S, n, B, L), 9.54) < 2e-3);
        assert!(rel(optimal_p2p(S, n, B, 953.0), 8.57) < 1e-3);
        assert!(rel(pipelined_tree(S, MIB, 2, tree_depth(n, 2), B, L), 17.0) < 1e-2);
        assert!(rel(binomial_tree(S, n, B, L), 76.5) < 1e-3);
        assert!(rel(sequential_unicast(S, n, B), 2549.0) < 1e-3);
        assert!(
            rel(
                physical_lower_bound(S, 2.5, B, 50.0 * MIB, f64::INFINITY, 0.0),
                47.7
            ) < 1e-3
        );
        assert!(rel(multicast(S, B, f64::INFINITY), S / B) < 1e-12);
    }

    #[test]
    fn loss_models() {
        for (n, e) in [(300, 1.26), (1000, 1.63), (10_000, 2.01)] {
            assert!(
                (multicast_expected_transmissions(1e-3, n) - e).abs() < 0.006,
                "N={n}"
            );
        }
        assert_eq!(multicast_expected_transmissions(0.0, 5), 1.0);
        assert!(rel(fec_stripe_failure(128, 8, 1e-2), 1.1e-5) < 0.05);
        assert!(rel(fec_stripe_failure(64, 4, 1e-2), 6.2e-4) < 0.05);
    }

    #[test]
    fn shapes() {
        assert_eq!(tree_depth(0, 2), 0);
        assert_eq!(
            (
                tree_depth(2, 2),
                tree_depth(3, 2),
                tree_depth(6, 2),
                tree_depth(7, 2)
            ),
            (1, 2, 2, 3)
        );
        assert_eq!(tree_depth(5, 1), 5);
        assert_eq!(chunk_count(10.0, 4.0), 3.0);
        // The textbook chain is the PerChunk stream at the last receiver; the tree is PerConnection.
        assert!(
            rel(
                chain_store_and_forward(S, MIB, 50, B, L),
                stream_per_chunk(S, MIB, B, 50, L)
            ) < 1e-12
        );
        assert!(
            rel(
                pipelined_tree(S, MIB, 3, 4, B, L),
                stream_per_connection(S, MIB, B / 3.0, 4, L)
            ) < 1e-12
        );
        assert!(p2p_lower_bound(S, 10, B, B, 10.0 * B) >= S / B);
        assert!(
            rel(
                node_rate(B, B, 2, f64::INFINITY, 1e9, 50.0 * MIB, 2.5),
                20.0 * MIB
            ) < 1e-12
        );
        assert!(rel(chain_heterogeneous(S, B, 1, 1.0), S / B) < 1e-12);
        assert!(rel(scatter_allgather(S, 1000, B, 0.0), 2.0 * 0.999 * S / B) < 1e-12);
    }
}
