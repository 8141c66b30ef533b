//! The plan: which actions may start, and which become ready when one ends. Pure data and
//! counters, no I/O (ninja's `Plan`), shared by the worker threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::action::{ActionGraph, Artifact};

/// Dependency counts of an action graph.
#[derive(Debug)]
pub struct Plan {
    /// For each action, the actions that read one of its outputs.
    dependents: Vec<Vec<usize>>,
    /// For each action, how many of the actions it reads from have not ended; `usize::MAX`
    /// for an action that is not wanted (it never becomes ready).
    remaining: Vec<AtomicUsize>,
    /// How many actions are wanted.
    wanted: usize,
}

impl Plan {
    /// The plan of `graph`: every action waits for the distinct producers of its inputs.
    pub fn new(graph: &ActionGraph) -> Self {
        let n = graph.actions.len();
        let mut dependents = vec![Vec::new(); n];
        let mut remaining = Vec::with_capacity(n);
        for (id, action) in graph.actions.iter().enumerate() {
            let mut deps: Vec<usize> = action
                .inputs
                .iter()
                .filter_map(|i| match &i.artifact {
                    Artifact::Derived { action, .. } => Some(action.0),
                    Artifact::Source { .. } => None,
                })
                .collect();
            deps.sort_unstable();
            deps.dedup();
            for d in &deps {
                dependents[*d].push(id);
            }
            remaining.push(AtomicUsize::new(deps.len()));
        }
        Plan { dependents, remaining, wanted: n }
    }

    /// The plan of the actions of `graph` that `wanted` marks (a set closed under "reads the
    /// outputs of"): the others never start.
    pub fn only(graph: &ActionGraph, wanted: &[bool]) -> Self {
        let mut plan = Plan::new(graph);
        for (id, remaining) in plan.remaining.iter_mut().enumerate() {
            if !wanted.get(id).copied().unwrap_or(true) {
                *remaining = AtomicUsize::new(usize::MAX);
            }
        }
        plan.wanted = (0..graph.actions.len()).filter(|id| wanted.get(*id).copied().unwrap_or(true)).count();
        plan
    }

    /// How many actions the plan runs (or skips): the wanted ones.
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// The number of actions.
    pub fn len(&self) -> usize {
        self.remaining.len()
    }

    /// True for an empty graph.
    pub fn is_empty(&self) -> bool {
        self.remaining.is_empty()
    }

    /// The actions that can start at once (they read no other action's outputs).
    pub fn ready(&self) -> Vec<usize> {
        (0..self.len()).filter(|&id| self.remaining[id].load(Ordering::Acquire) == 0).collect()
    }

    /// Notes that action `id` ended; returns its dependents that now have no producer left to
    /// wait for. Each action is returned exactly once over a build, whatever the order in
    /// which threads report.
    pub fn ended(&self, id: usize) -> Vec<usize> {
        self.dependents[id].iter().copied().filter(|&d| self.remaining[d].fetch_sub(1, Ordering::AcqRel) == 1).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::action::{Action, ActionContext, ActionError, ActionExec, ActionId, Input, OutputKind, OutputSpec};
    use crate::label::Label;

    #[derive(Debug, serde::Serialize)]
    struct Nop;
    impl ActionExec for Nop {
        fn mnemonic(&self) -> &'static str {
            "Nop"
        }
        fn version(&self) -> u32 {
            1
        }
        fn run(&self, _: &ActionContext<'_>) -> Result<(), ActionError> {
            Ok(())
        }
    }

    fn graph(deps: &[&[usize]]) -> ActionGraph {
        let mut g = ActionGraph::default();
        for (id, ds) in deps.iter().enumerate() {
            let inputs = ds
                .iter()
                .map(|&d| {
                    Input::new(
                        format!("in/{d}"),
                        Artifact::Derived { action: ActionId(d), index: 0, path: format!("{d}") },
                    )
                })
                .collect();
            g.add(Action {
                owner: Label::parse_absolute("//p:t").expect("label"),
                inputs,
                outputs: vec![OutputSpec { path: format!("{id}"), kind: OutputKind::File { executable: false } }],
                exec: Arc::new(Nop),
            });
        }
        g
    }

    #[test]
    fn an_action_is_ready_once_all_its_producers_ended() {
        // 0 and 1 are roots; 2 reads 0 twice and 1; 3 reads 2.
        let plan = Plan::new(&graph(&[&[], &[], &[0, 0, 1], &[2]]));
        assert_eq!(plan.ready(), [0, 1]);
        assert_eq!(plan.ended(0), Vec::<usize>::new(), "2 still waits for 1");
        assert_eq!(plan.ended(1), [2]);
        assert_eq!(plan.ended(2), [3]);
        assert_eq!(plan.ended(3), Vec::<usize>::new());
    }

    #[test]
    fn reports_from_many_threads_release_each_action_once() {
        // 200 producers, one consumer of all of them.
        let mut deps: Vec<Vec<usize>> = (0..200).map(|_| Vec::new()).collect();
        deps.push((0..200).collect());
        let refs: Vec<&[usize]> = deps.iter().map(Vec::as_slice).collect();
        let plan = Plan::new(&graph(&refs));
        let released: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    s.spawn({
                        let plan = &plan;
                        move || (t..200).step_by(4).flat_map(|id| plan.ended(id)).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("thread")).collect()
        });
        assert_eq!(released, [200]);
    }

    #[test]
    fn actions_not_wanted_never_start() {
        // 0 -> 2 is wanted; 1 -> 3 is not (an image `--platforms` leaves out); 3 also reads 0.
        let plan = Plan::only(&graph(&[&[], &[], &[0], &[1, 0]]), &[true, false, true, false]);
        assert_eq!(plan.wanted(), 2);
        assert_eq!(plan.ready(), [0]);
        assert_eq!(plan.ended(0), [2], "3 reads 0 but is not wanted");
        assert_eq!(plan.ended(2), Vec::<usize>::new());
    }
}
