//! One NUTS transition: multinomial sampling over a doubling trajectory, biased progressive
//! sampling at the top level, the generalized U-turn criterion with the extra checks across
//! sub-trees (Stan ≥ 2.21, nuts-rs, PyMC, BlackJAX agree on this variant), and divergences.
//!
//! Phase-space points live in a small reference-counted arena so that no leapfrog step copies
//! or allocates a vector: a sub-tree only stores the ids of its two end points and of its
//! proposal, plus the sum of its momenta.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::density::{LogDensity, LogpError};
use crate::kernels::{
    TurnInputs, add_assign, add_into, half_kick_and_drift, half_kick_with_velocity, scale_momentum,
    sum_dot2, turning_dots,
};
use crate::metric::DiagMetric;

/// Largest step size the step-size search returns (Stan calls anything larger improper).
const MAX_STEP_SIZE: f64 = 1e7;
/// Smallest step size the step-size search returns.
const MIN_STEP_SIZE: f64 = 1e-10;
/// Bound on the doublings/halvings of the step-size search, so it always terminates.
const MAX_STEP_SEARCH: usize = 100;

/// A point of phase space with everything the trajectory needs about it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Point {
    /// Position (unconstrained parameters).
    pub(crate) q: Vec<f64>,
    /// Momentum.
    pub(crate) p: Vec<f64>,
    /// Velocity `M^-1 p` (Stan's `p_sharp`).
    pub(crate) v: Vec<f64>,
    /// Gradient of the log density at `q`.
    pub(crate) grad: Vec<f64>,
    /// Log density at `q` (`-inf` after a recoverable evaluation error).
    pub(crate) logp: f64,
    /// Kinetic energy `p·v / 2`.
    pub(crate) kinetic: f64,
    /// Signed number of leapfrog steps from the initial point of the current transition.
    pub(crate) index: i64,
}

impl Point {
    fn new(dim: usize) -> Self {
        Self {
            q: vec![0.0; dim],
            p: vec![0.0; dim],
            v: vec![0.0; dim],
            grad: vec![0.0; dim],
            logp: f64::NEG_INFINITY,
            kinetic: 0.0,
            index: 0,
        }
    }

    /// The Hamiltonian; NaN is mapped to +inf so that it always reads as a divergence.
    fn energy(&self) -> f64 {
        let h = self.kinetic - self.logp;
        if h.is_nan() { f64::INFINITY } else { h }
    }
}

/// Reference-counted storage of points, recycled between leapfrog steps and draws.
#[derive(Debug, Default)]
struct Arena {
    points: Vec<Point>,
    refs: Vec<u32>,
    free: Vec<usize>,
    dim: usize,
}

impl Arena {
    fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    /// A point id with one reference; its contents are stale until written.
    fn alloc(&mut self) -> usize {
        if let Some(id) = self.free.pop() {
            self.refs[id] = 1;
            id
        } else {
            self.points.push(Point::new(self.dim));
            self.refs.push(1);
            self.points.len() - 1
        }
    }

    fn retain(&mut self, id: usize, extra: u32) {
        self.refs[id] += extra;
    }

    fn release(&mut self, id: usize) {
        self.refs[id] -= 1;
        if self.refs[id] == 0 {
            self.free.push(id);
        }
    }

    /// Number of points currently referenced (used to check that trees release everything).
    fn live(&self) -> usize {
        self.points.len() - self.free.len()
    }

    /// Shared access to `from` and exclusive access to `to` (`from != to`).
    fn pair(&mut self, from: usize, to: usize) -> (&Point, &mut Point) {
        debug_assert_ne!(from, to);
        if from < to {
            let (head, tail) = self.points.split_at_mut(to);
            (&head[from], &mut tail[0])
        } else {
            let (head, tail) = self.points.split_at_mut(from);
            (&tail[0], &mut head[to])
        }
    }
}

/// Recycled buffers for momentum sums of sub-trees (each owned by exactly one tree).
#[derive(Debug, Default)]
struct BufferPool {
    buffers: Vec<Vec<f64>>,
    free: Vec<usize>,
}

impl BufferPool {
    fn alloc(&mut self, dim: usize) -> usize {
        if let Some(id) = self.free.pop() {
            id
        } else {
            self.buffers.push(vec![0.0; dim]);
            self.buffers.len() - 1
        }
    }

    fn release(&mut self, id: usize) {
        self.free.push(id);
    }
}

/// Direction of integration in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

impl Direction {
    fn sign(self) -> f64 {
        match self {
            Direction::Forward => 1.0,
            Direction::Backward => -1.0,
        }
    }
}

/// The momentum sum `rho` of a tree.
#[derive(Debug, Clone, Copy)]
enum Rho {
    /// A single point: `rho` is its momentum.
    Leaf,
    /// A buffer of the [`BufferPool`].
    Buffer(usize),
    /// The tree turned; its momentum sum is never needed again.
    Discarded,
}

/// A (sub-)trajectory: its spatial end points, its multinomial proposal and total weight.
#[derive(Debug)]
struct Tree {
    /// Earliest point in time (backward end).
    left: usize,
    /// Latest point in time (forward end).
    right: usize,
    proposal: usize,
    rho: Rho,
    /// `log sum exp(H0 - H)` over the tree's points.
    log_weight: f64,
}

impl Tree {
    /// The end point a new sub-tree in `dir` is integrated from.
    fn end(&self, dir: Direction) -> usize {
        match dir {
            Direction::Forward => self.right,
            Direction::Backward => self.left,
        }
    }

    fn is_leaf(&self) -> bool {
        matches!(self.rho, Rho::Leaf)
    }
}

/// Statistics of one transition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransitionStats {
    pub(crate) logp: f64,
    pub(crate) accept_stat: f64,
    /// nuts-rs's symmetric acceptance statistic `mean(2 min(1, e^d) / (1 + e^d))`.
    pub(crate) accept_stat_sym: f64,
    pub(crate) depth: u32,
    pub(crate) n_leapfrog: u64,
    pub(crate) diverging: bool,
    pub(crate) energy: f64,
    pub(crate) energy_error: f64,
    pub(crate) max_depth_reached: bool,
    /// Position of the selected point in the trajectory (0: the chain did not move).
    pub(crate) index_in_trajectory: i64,
    /// Whether the divergence came from a recoverable log-density error.
    pub(crate) logp_error: bool,
}

/// What went wrong with a candidate initial point.
pub(crate) enum PointProblem {
    /// The density returned a recoverable error or a non-finite value.
    NotFinite(String),
}

/// The state of one chain's Hamiltonian system and its NUTS transition.
pub(crate) struct Nuts<D: LogDensity> {
    pub(crate) density: D,
    pub(crate) metric: DiagMetric,
    arena: Arena,
    rhos: BufferPool,
    /// Id of the chain's current point (holds one reference).
    current: usize,
    max_depth: u32,
    max_energy_error: f64,
    /// Number of log-density evaluations so far.
    pub(crate) grad_evals: u64,
    // Per-transition accumulators.
    step_size: f64,
    initial_energy: f64,
    n_leapfrog: u64,
    sum_accept: f64,
    sum_accept_sym: f64,
    diverging: bool,
    logp_error: bool,
}

impl<D: LogDensity> Nuts<D> {
    pub(crate) fn new(density: D, max_depth: u32, max_energy_error: f64) -> Self {
        let dim = density.dim();
        let mut arena = Arena::new(dim);
        let current = arena.alloc();
        Self {
            density,
            metric: DiagMetric::identity(dim),
            arena,
            rhos: BufferPool::default(),
            current,
            max_depth,
            max_energy_error,
            grad_evals: 0,
            step_size: 1.0,
            initial_energy: 0.0,
            n_leapfrog: 0,
            sum_accept: 0.0,
            sum_accept_sym: 0.0,
            diverging: false,
            logp_error: false,
        }
    }

    /// The chain's current point.
    pub(crate) fn current(&self) -> &Point {
        &self.arena.points[self.current]
    }

    /// The current point together with the metric, for the adaptation to update.
    pub(crate) fn point_and_metric(&mut self) -> (&Point, &mut DiagMetric) {
        (&self.arena.points[self.current], &mut self.metric)
    }

    /// Moves the chain to `q`, evaluating the density there. `Ok(Err(_))` says why the point
    /// is unusable (non-finite value or gradient, recoverable error).
    pub(crate) fn set_position(&mut self, q: &[f64]) -> Result<Result<(), PointProblem>, D::Error> {
        let point = &mut self.arena.points[self.current];
        point.q.copy_from_slice(q);
        self.grad_evals += 1;
        match self.density.logp_grad(&point.q, &mut point.grad) {
            Ok(logp) if !logp.is_finite() => Ok(Err(PointProblem::NotFinite(format!(
                "log density is {logp}"
            )))),
            Ok(logp) => {
                point.logp = logp;
                match point.grad.iter().position(|g| !g.is_finite()) {
                    Some(i) => Ok(Err(PointProblem::NotFinite(format!(
                        "gradient[{i}] is {}",
                        point.grad[i]
                    )))),
                    None => Ok(Ok(())),
                }
            }
            Err(e) if e.is_recoverable() => Ok(Err(PointProblem::NotFinite(format!(
                "recoverable error: {e}"
            )))),
            Err(e) => Err(e),
        }
    }

    /// Draws a fresh momentum `p ~ N(0, M)` for the current point.
    fn resample_momentum<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        let point = &mut self.arena.points[self.current];
        for p in point.p.iter_mut() {
            *p = rng.sample(StandardNormal);
        }
        let twice_kinetic = scale_momentum(
            &mut point.p,
            &mut point.v,
            self.metric.sqrt_mass(),
            self.metric.inv_mass(),
        );
        point.kinetic = 0.5 * twice_kinetic;
        point.index = 0;
    }

    /// One leapfrog step of signed size `eps` from point `from` into point `to`.
    ///
    /// Returns `Ok(false)` when the density failed recoverably (the point's energy is then
    /// +inf); a non-recoverable error is returned as `Err`.
    fn leapfrog(&mut self, from: usize, to: usize, eps: f64) -> Result<bool, D::Error> {
        let (src, dst) = self.arena.pair(from, to);
        let half = 0.5 * eps;
        let inv_mass = self.metric.inv_mass();
        half_kick_and_drift(
            &mut dst.q, &mut dst.p, &src.q, &src.p, &src.grad, inv_mass, half, eps,
        );
        dst.index = src.index + if eps >= 0.0 { 1 } else { -1 };
        self.grad_evals += 1;
        match self.density.logp_grad(&dst.q, &mut dst.grad) {
            Ok(logp) => dst.logp = logp,
            Err(e) if e.is_recoverable() => {
                dst.logp = f64::NEG_INFINITY;
                dst.kinetic = 0.0;
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        dst.kinetic =
            0.5 * half_kick_with_velocity(&mut dst.p, &mut dst.v, &dst.grad, inv_mass, half);
        Ok(true)
    }

    /// One NUTS transition from the current point with step size `step_size`.
    pub(crate) fn transition<R: Rng + ?Sized>(
        &mut self,
        step_size: f64,
        rng: &mut R,
    ) -> Result<TransitionStats, D::Error> {
        self.resample_momentum(rng);
        self.begin_transition(step_size);
        let init = self.current;
        // The initial tree holds three references (left, right, proposal) to the current point.
        self.arena.retain(init, 3);
        let mut tree = Tree {
            left: init,
            right: init,
            proposal: init,
            rho: Rho::Leaf,
            log_weight: 0.0,
        };
        let mut depth = 0;
        while depth < self.max_depth {
            let dir = if rng.random::<f64>() > 0.5 {
                Direction::Forward
            } else {
                Direction::Backward
            };
            let Some(subtree) = self.build_subtree(tree.end(dir), depth, dir, rng)? else {
                break;
            };
            depth += 1;
            // Biased progressive sampling: favour the new sub-tree when it is heavier.
            let log_ratio = subtree.log_weight - tree.log_weight;
            let take_new = log_ratio > 0.0 || rng.random::<f64>() < log_ratio.exp();
            let (joined, turning) = self.join(tree, subtree, dir, take_new);
            tree = joined;
            if turning {
                break;
            }
        }
        let chosen = tree.proposal;
        self.arena.retain(chosen, 1);
        self.drop_tree(tree);
        self.arena.release(self.current);
        self.current = chosen;
        debug_assert_eq!(self.arena.live(), 1, "a trajectory leaked points");
        Ok(self.transition_stats(depth))
    }

    fn begin_transition(&mut self, step_size: f64) {
        self.step_size = step_size;
        self.initial_energy = self.arena.points[self.current].energy();
        self.n_leapfrog = 0;
        self.sum_accept = 0.0;
        self.sum_accept_sym = 0.0;
        self.diverging = false;
        self.logp_error = false;
    }

    fn transition_stats(&self, depth: u32) -> TransitionStats {
        let point = self.current();
        let n = self.n_leapfrog.max(1) as f64;
        TransitionStats {
            logp: point.logp,
            accept_stat: self.sum_accept / n,
            accept_stat_sym: self.sum_accept_sym / n,
            depth,
            n_leapfrog: self.n_leapfrog,
            diverging: self.diverging,
            energy: point.energy(),
            energy_error: point.energy() - self.initial_energy,
            max_depth_reached: depth >= self.max_depth,
            index_in_trajectory: point.index,
            logp_error: self.logp_error,
        }
    }

    /// Builds a sub-tree of `2^depth` points continuing from point `from` in `dir`.
    /// `None` means the sub-tree diverged or turned and must not be used.
    fn build_subtree<R: Rng + ?Sized>(
        &mut self,
        from: usize,
        depth: u32,
        dir: Direction,
        rng: &mut R,
    ) -> Result<Option<Tree>, D::Error> {
        if depth == 0 {
            return self.leaf(from, dir);
        }
        let Some(first) = self.build_subtree(from, depth - 1, dir, rng)? else {
            return Ok(None);
        };
        let Some(second) = self.build_subtree(first.end(dir), depth - 1, dir, rng)? else {
            self.drop_tree(first);
            return Ok(None);
        };
        // Uniform progressive sampling inside sub-trees.
        let total = log_add_exp(first.log_weight, second.log_weight);
        let take_second = rng.random::<f64>() < (second.log_weight - total).exp();
        let (joined, turning) = self.join(first, second, dir, take_second);
        if turning {
            self.drop_tree(joined);
            return Ok(None);
        }
        Ok(Some(joined))
    }

    /// One leapfrog step from `from`; a divergent step gives `None`.
    fn leaf(&mut self, from: usize, dir: Direction) -> Result<Option<Tree>, D::Error> {
        let to = self.arena.alloc();
        let finite = self.leapfrog(from, to, dir.sign() * self.step_size)?;
        self.n_leapfrog += 1;
        let energy = self.arena.points[to].energy();
        let log_weight = self.initial_energy - energy;
        self.sum_accept += if log_weight > 0.0 {
            1.0
        } else {
            log_weight.exp()
        };
        self.sum_accept_sym += symmetric_accept(log_weight);
        if !finite || !energy.is_finite() || -log_weight > self.max_energy_error {
            self.diverging = true;
            self.logp_error |= !finite;
            self.arena.release(to);
            return Ok(None);
        }
        self.arena.retain(to, 2);
        Ok(Some(Tree {
            left: to,
            right: to,
            proposal: to,
            rho: Rho::Leaf,
            log_weight,
        }))
    }

    /// Joins the tree built so far (`older`) with the new sub-tree (`newer`) built in `dir`,
    /// keeping the proposal of `newer` if `take_newer`. Returns the joined tree and whether the
    /// joined trajectory satisfies the U-turn criterion (then its momentum sum is discarded).
    fn join(&mut self, older: Tree, newer: Tree, dir: Direction, take_newer: bool) -> (Tree, bool) {
        let (keep, discard) = if take_newer {
            (newer.proposal, older.proposal)
        } else {
            (older.proposal, newer.proposal)
        };
        let (left, right) = match dir {
            Direction::Forward => (older, newer),
            Direction::Backward => (newer, older),
        };
        let turning = self.is_turning(&left, &right);
        let rho = if turning {
            self.free_rho(left.rho);
            self.free_rho(right.rho);
            Rho::Discarded
        } else {
            self.sum_rho(&left, &right)
        };
        self.arena.release(discard);
        self.arena.release(left.right);
        self.arena.release(right.left);
        let joined = Tree {
            left: left.left,
            right: right.right,
            proposal: keep,
            rho,
            log_weight: log_add_exp(left.log_weight, right.log_weight),
        };
        (joined, turning)
    }

    fn rho_of(&self, tree: &Tree) -> &[f64] {
        match tree.rho {
            Rho::Buffer(id) => &self.rhos.buffers[id],
            Rho::Leaf | Rho::Discarded => &self.arena.points[tree.left].p,
        }
    }

    /// The generalized U-turn criterion on the joined trajectory plus Stan's two extra checks:
    /// (left tree + first point of the right tree) and (last point of the left tree + right
    /// tree). All six dot products are computed in one pass.
    fn is_turning(&self, left: &Tree, right: &Tree) -> bool {
        let points = &self.arena.points;
        let rho_left = self.rho_of(left);
        let rho_right = self.rho_of(right);
        let v_start = &points[left.left].v;
        let v_end = &points[right.right].v;
        if left.is_leaf() && right.is_leaf() {
            // For two single points the extra checks coincide with the full one.
            let (a, b) = sum_dot2(rho_left, rho_right, v_start, v_end);
            return a <= 0.0 || b <= 0.0;
        }
        let (left_end, right_start) = (&points[left.right], &points[right.left]);
        let dots = turning_dots(&TurnInputs {
            rho_left,
            rho_right,
            v_start,
            v_end,
            p_left_end: &left_end.p,
            v_left_end: &left_end.v,
            p_right_start: &right_start.p,
            v_right_start: &right_start.v,
        });
        dots.iter().any(|&x| x <= 0.0)
    }

    /// The momentum sum of the joined tree, reusing one of the two buffers when possible.
    fn sum_rho(&mut self, left: &Tree, right: &Tree) -> Rho {
        let dim = self.arena.dim;
        match (left.rho, right.rho) {
            (Rho::Buffer(a), Rho::Buffer(b)) => {
                let (dst, src) = two_buffers(&mut self.rhos.buffers, a, b);
                add_assign(dst, src);
                self.rhos.release(b);
                Rho::Buffer(a)
            }
            (Rho::Buffer(a), _) => {
                add_assign(&mut self.rhos.buffers[a], &self.arena.points[right.left].p);
                Rho::Buffer(a)
            }
            (_, Rho::Buffer(b)) => {
                add_assign(&mut self.rhos.buffers[b], &self.arena.points[left.left].p);
                Rho::Buffer(b)
            }
            _ => {
                let id = self.rhos.alloc(dim);
                let (pl, pr) = (
                    &self.arena.points[left.left].p,
                    &self.arena.points[right.left].p,
                );
                add_into(&mut self.rhos.buffers[id], pl, pr);
                Rho::Buffer(id)
            }
        }
    }

    fn free_rho(&mut self, rho: Rho) {
        if let Rho::Buffer(id) = rho {
            self.rhos.release(id);
        }
    }

    fn drop_tree(&mut self, tree: Tree) {
        self.free_rho(tree.rho);
        self.arena.release(tree.left);
        self.arena.release(tree.right);
        self.arena.release(tree.proposal);
    }

    /// Stan's step-size heuristic: from `start`, double (or halve) the step size while one
    /// leapfrog step from the current point with a fresh momentum keeps (or misses) an
    /// acceptance probability of 0.8. Bounded, so it always terminates.
    pub(crate) fn find_step_size<R: Rng + ?Sized>(
        &mut self,
        start: f64,
        rng: &mut R,
    ) -> Result<f64, D::Error> {
        let log_target = 0.8f64.ln();
        let mut eps = start.clamp(MIN_STEP_SIZE, MAX_STEP_SIZE);
        let increase = self.one_step_log_accept(eps, rng)? > log_target;
        for _ in 0..MAX_STEP_SEARCH {
            let log_accept = self.one_step_log_accept(eps, rng)?;
            let (above, below) = (log_accept > log_target, log_accept < log_target);
            let crossed = if increase { !above } else { !below };
            if crossed {
                break;
            }
            let next = if increase { eps * 2.0 } else { eps * 0.5 };
            if !(MIN_STEP_SIZE..=MAX_STEP_SIZE).contains(&next) {
                break;
            }
            eps = next;
        }
        Ok(eps)
    }

    /// `H0 - H` after one leapfrog step of size `eps` from the current point with a fresh
    /// momentum (`-inf` when the step fails).
    fn one_step_log_accept<R: Rng + ?Sized>(
        &mut self,
        eps: f64,
        rng: &mut R,
    ) -> Result<f64, D::Error> {
        self.resample_momentum(rng);
        let h0 = self.current().energy();
        let to = self.arena.alloc();
        let result = self.leapfrog(self.current, to, eps);
        let h = self.arena.points[to].energy();
        self.arena.release(to);
        Ok(if result? { h0 - h } else { f64::NEG_INFINITY })
    }
}

/// `log(exp(a) + exp(b))` without overflow.
fn log_add_exp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// nuts-rs's symmetric acceptance statistic of one step with `H0 - H = d`.
fn symmetric_accept(d: f64) -> f64 {
    if d.is_nan() {
        return 0.0;
    }
    let numerator = 2.0 * d.min(0.0).exp();
    numerator / (1.0 + d.exp())
}

/// Exclusive access to buffer `a` and shared access to buffer `b` (`a != b`).
fn two_buffers(buffers: &mut [Vec<f64>], a: usize, b: usize) -> (&mut [f64], &[f64]) {
    if a < b {
        let (head, tail) = buffers.split_at_mut(b);
        (&mut head[a], &tail[0])
    } else {
        let (head, tail) = buffers.split_at_mut(a);
        (&mut tail[0], &head[b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::IidGaussian;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn log_add_exp_is_stable() {
        assert_eq!(
            log_add_exp(f64::NEG_INFINITY, f64::NEG_INFINITY),
            f64::NEG_INFINITY
        );
        assert!((log_add_exp(0.0, 0.0) - 2f64.ln()).abs() < 1e-15);
        assert!((log_add_exp(1000.0, 0.0) - 1000.0).abs() < 1e-12);
    }

    #[test]
    fn symmetric_accept_is_one_at_zero_and_vanishes_far_away() {
        assert!((symmetric_accept(0.0) - 1.0).abs() < 1e-15);
        assert!(symmetric_accept(-800.0) < 1e-300);
        assert!(symmetric_accept(800.0) < 1e-300);
        assert_eq!(symmetric_accept(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn transitions_release_every_point_and_buffer() {
        let mut nuts = Nuts::new(IidGaussian::new(5), 10, 1000.0);
        let mut rng = StdRng::seed_from_u64(1);
        assert!(matches!(nuts.set_position(&[0.5; 5]), Ok(Ok(()))));
        for step in [0.01, 0.5, 1.2, 3.0] {
            for _ in 0..50 {
                let Ok(stats) = nuts.transition(step, &mut rng);
                assert!(stats.n_leapfrog >= 1);
                assert_eq!(nuts.arena.live(), 1);
                assert_eq!(nuts.rhos.free.len(), nuts.rhos.buffers.len());
            }
        }
    }

    #[test]
    fn leapfrog_conserves_energy_for_small_steps() {
        let mut nuts = Nuts::new(IidGaussian::new(3), 10, 1000.0);
        let mut rng = StdRng::seed_from_u64(2);
        assert!(matches!(nuts.set_position(&[0.3, -1.0, 2.0]), Ok(Ok(()))));
        let Ok(log_accept) = nuts.one_step_log_accept(1e-4, &mut rng);
        assert!(log_accept.abs() < 1e-8);
    }

    #[test]
    fn step_size_search_finds_a_sensible_value_for_a_standard_normal() {
        let mut nuts = Nuts::new(IidGaussian::new(10), 10, 1000.0);
        let mut rng = StdRng::seed_from_u64(3);
        assert!(matches!(nuts.set_position(&[0.1; 10]), Ok(Ok(()))));
        let Ok(eps) = nuts.find_step_size(1e-3, &mut rng);
        assert!((0.1..4.0).contains(&eps), "step size {eps}");
    }
}
