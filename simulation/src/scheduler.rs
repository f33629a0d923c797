//! The deterministic scheduler: every port call of every actor waits at a
//! turnstile ([`Director`]) until the scheduler, drawing from the seed,
//! picks it to run next and says what goes wrong with it, if anything. One
//! thread, one actor polled at a time, a clock that moves only when the
//! scheduler moves it: the same seed makes the same run.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::Context,
};

use futures::{channel::oneshot, future::LocalBoxFuture, task::noop_waker_ref};
use shared::memory::{Director, Fault, Op};

/// A port call waiting for its turn.
struct Ticket {
    actor: usize,
    op: Op,
    since: tokio::time::Instant,
    answer: oneshot::Sender<Option<Fault>>,
}

#[derive(Default)]
struct Turns {
    /// The actor being polled now, whose calls park here.
    current: Option<usize>,
    next: u64,
    waiting: BTreeMap<u64, Ticket>,
}

/// The [`Director`] of every in-memory port: parks each call of the actor
/// being polled. Calls made outside any actor (the harness setting up or
/// reading the books) go straight through.
#[derive(Clone, Default)]
pub struct Turnstile(Arc<Mutex<Turns>>);

impl Turnstile {
    fn turns(&self) -> std::sync::MutexGuard<'_, Turns> {
        self.0.lock().expect("the turnstile lock")
    }
}

impl Director for Turnstile {
    fn call(&self, op: Op) -> Pin<Box<dyn Future<Output = Option<Fault>> + Send>> {
        let mut turns = self.turns();
        let Some(actor) = turns.current else {
            return Box::pin(std::future::ready(None));
        };
        let (answer, heard) = oneshot::channel();
        let number = turns.next;
        turns.next += 1;
        let since = tokio::time::Instant::now();
        turns.waiting.insert(
            number,
            Ticket {
                actor,
                op,
                since,
                answer,
            },
        );
        // A dropped answer is a dropped actor: it never runs on.
        Box::pin(async move { heard.await.unwrap_or(None) })
    }
}

/// A call waiting for its turn, as the scheduler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    pub number: u64,
    pub actor: usize,
    pub op: Op,
    /// When the call was made.
    pub since: tokio::time::Instant,
}

/// One actor: a flow of a shopper, an operator or a job, and its name.
struct Actor {
    name: String,
    flow: Option<LocalBoxFuture<'static, ()>>,
}

/// The actors and the calls they wait on.
#[derive(Default)]
pub struct Scheduler {
    pub turnstile: Turnstile,
    actors: Vec<Actor>,
}

impl Scheduler {
    /// Starts an actor; it runs up to its first port call at the next
    /// [`settle`](Self::settle).
    pub fn spawn(&mut self, name: String, flow: impl Future<Output = ()> + 'static) -> usize {
        self.actors.push(Actor {
            name,
            flow: Some(Box::pin(flow)),
        });
        self.actors.len() - 1
    }

    pub fn name(&self, actor: usize) -> &str {
        &self.actors[actor].name
    }

    /// Actors still running.
    pub fn running(&self) -> usize {
        self.actors.iter().filter(|actor| actor.flow.is_some()).count()
    }

    /// Whether the actor is still running.
    pub fn runs(&self, actor: usize) -> bool {
        self.actors[actor].flow.is_some()
    }

    /// The calls waiting for their turn, oldest first.
    pub fn waiting(&self) -> Vec<Waiting> {
        self.turnstile
            .turns()
            .waiting
            .iter()
            .map(|(number, ticket)| Waiting {
                number: *number,
                actor: ticket.actor,
                op: ticket.op,
                since: ticket.since,
            })
            .collect()
    }

    /// Polls one actor once: it runs until every call it makes waits, it
    /// sleeps, or it is done.
    fn poll(&mut self, actor: usize) {
        let Some(flow) = self.actors[actor].flow.as_mut() else {
            return;
        };
        self.turnstile.turns().current = Some(actor);
        let done = flow
            .as_mut()
            .poll(&mut Context::from_waker(noop_waker_ref()))
            .is_ready();
        self.turnstile.turns().current = None;
        if done {
            self.actors[actor].flow = None;
        }
    }

    /// Polls every running actor that waits on no call (new, or woken by
    /// the clock), in the order they were started.
    pub fn settle(&mut self) {
        let waiting: Vec<usize> = self.waiting().iter().map(|w| w.actor).collect();
        for actor in 0..self.actors.len() {
            if !waiting.contains(&actor) {
                self.poll(actor);
            }
        }
    }

    /// Lets call `number` run, meeting `fault`, and runs its actor on.
    pub fn grant(&mut self, number: u64, fault: Option<Fault>) {
        let Some(ticket) = self.turnstile.turns().waiting.remove(&number) else {
            return;
        };
        let _ = ticket.answer.send(fault);
        self.poll(ticket.actor);
        if fault == Some(Fault::Crash) {
            self.kill(ticket.actor);
        }
    }

    /// The actor's process dies: whatever it was doing stops here.
    pub fn kill(&mut self, actor: usize) {
        self.turnstile.turns().waiting.retain(|_, ticket| ticket.actor != actor);
        self.actors[actor].flow = None;
    }
}
