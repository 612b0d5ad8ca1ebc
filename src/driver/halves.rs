//! Split halves of the shared loop: one [`WebSocket`] for two tasks, a
//! reading one and a writing one, over any [`Transport`].
//!
//! The halves share the WebSocket, and one task at a time has it. The
//! reading half has it while it reads; when the writing half asks for it,
//! the reading half steps aside at once if it is waiting for the peer
//! (the transport's read is dropped, as when the core's deadline comes:
//! [`Transport::read`] is cancel-safe) and takes it back once the writing
//! half is done. So a task that writes never waits for the peer to send
//! something, and what the reading half decodes and answers (Pongs, the
//! Close reply) is written as on the whole WebSocket.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::{Mutex, MutexGuard};

use super::policy::received;
use super::socket::{Clock, Transport, WebSocket};
use crate::{Event, Message};

/// The reading half of a split [`WebSocket`]: receives, and answers what
/// the protocol asks (Pongs, the Close reply) on the way.
#[derive(Debug)]
pub struct ReadHalf<T, C> {
    shared: Arc<Shared<WebSocket<T, C>>>,
}

/// The writing half of a split [`WebSocket`]: [`lock`](WriteHalf::lock)
/// it for a command; the reading half steps aside meanwhile.
#[derive(Debug)]
pub struct WriteHalf<T, C> {
    shared: Arc<Shared<WebSocket<T, C>>>,
}

impl<T: Transport, C: Clock> WebSocket<T, C> {
    /// Splits into a reading half and a writing half for two tasks. The
    /// reading half also writes what the protocol asks for (Pongs, Close
    /// replies), so a task that only reads keeps the connection healthy;
    /// the writing half gives the whole WebSocket, for any command, while
    /// it is locked.
    pub fn split(self) -> (ReadHalf<T, C>, WriteHalf<T, C>) {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                value: Some(self),
                waiting: Vec::new(),
                next_id: 0,
                yielded: false,
                holder: None,
            }),
        });
        let read = ReadHalf {
            shared: shared.clone(),
        };
        (read, WriteHalf { shared })
    }
}

impl<T: Transport, C: Clock> ReadHalf<T, C> {
    /// The next data message, as [`Driver::recv`](crate::Driver::recv).
    pub async fn recv(&mut self) -> Result<Option<Message>, T::Error> {
        loop {
            if let Some(done) = received(self.recv_event().await?) {
                return done;
            }
        }
    }

    /// The next event, as [`Driver::recv_event`](crate::Driver::recv_event),
    /// stepping aside while the writing half has the WebSocket.
    pub async fn recv_event(&mut self) -> Result<Event, T::Error> {
        let mut stepped_aside = false;
        loop {
            let mut ws = Acquire::new(&self.shared, stepped_aside).await;
            let wanted = Contended {
                shared: &self.shared,
            };
            if let Some(event) = ws.recv_event_unless(wanted).await {
                return event;
            }
            // Asked for: give the WebSocket to the writing half.
            self.shared.lock().yielded = true;
            drop(ws);
            stepped_aside = true;
        }
    }
}

impl<T, C> WriteHalf<T, C> {
    /// The whole WebSocket, for a command (`use rfc6455::Driver;`), once
    /// the reading half has stepped aside; it goes back when the guard is
    /// dropped. Hold it only for commands: the reading half waits.
    pub fn lock(&self) -> impl Future<Output = Locked<WebSocket<T, C>>> + '_ {
        Acquire::new(&self.shared, false)
    }
}

/// The WebSocket, lent to one half; given back when dropped.
#[derive(Debug)]
pub struct Locked<W> {
    value: Option<W>,
    shared: Arc<Shared<W>>,
}

impl<W> Deref for Locked<W> {
    type Target = W;
    fn deref(&self) -> &W {
        self.value.as_ref().expect("held until dropped")
    }
}

impl<W> DerefMut for Locked<W> {
    fn deref_mut(&mut self) -> &mut W {
        self.value.as_mut().expect("held until dropped")
    }
}

impl<W> Drop for Locked<W> {
    fn drop(&mut self) {
        let mut slot = self.shared.lock();
        slot.value = self.value.take();
        slot.holder = None;
        slot.wake_all();
    }
}

/// What the halves share: the WebSocket, when nobody has it, and who
/// waits for it.
#[derive(Debug)]
struct Shared<W> {
    slot: Mutex<Slot<W>>,
}

#[derive(Debug)]
struct Slot<W> {
    value: Option<W>,
    /// The tasks waiting for it, by the id of their wait.
    waiting: Vec<(u64, Waker)>,
    next_id: u64,
    /// The reading half stepped aside: it does not take the WebSocket back
    /// before one of the others waiting has had it (or stopped waiting).
    yielded: bool,
    /// The task that has it, while it waits for the peer: woken when
    /// another asks for it.
    holder: Option<Waker>,
}

impl<W> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, Slot<W>> {
        // A panic while locked leaves the slot whole: nothing in here
        // panics between two writes.
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<W> Slot<W> {
    fn wake_all(&mut self) {
        for (_, waker) in &self.waiting {
            waker.wake_by_ref();
        }
    }
}

/// Waiting for the WebSocket.
struct Acquire<'a, W> {
    shared: &'a Arc<Shared<W>>,
    /// The id of this wait, once it waits.
    id: Option<u64>,
    /// The reading half, after it stepped aside.
    stepped_aside: bool,
}

impl<'a, W> Acquire<'a, W> {
    fn new(shared: &'a Arc<Shared<W>>, stepped_aside: bool) -> Self {
        Acquire {
            shared,
            id: None,
            stepped_aside,
        }
    }
}

impl<W> Future for Acquire<'_, W> {
    type Output = Locked<W>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Locked<W>> {
        let shared = self.shared;
        let mut slot = shared.lock();
        let id = self.id;
        // The reading half, having stepped aside, lets whoever waits have
        // it first.
        let others = slot.waiting.iter().any(|(i, _)| Some(*i) != id);
        if slot.value.is_some() && !(self.stepped_aside && slot.yielded && others) {
            let value = slot.value.take();
            slot.waiting.retain(|(i, _)| Some(*i) != id);
            slot.yielded = false;
            drop(slot);
            self.id = None;
            return Poll::Ready(Locked {
                value,
                shared: shared.clone(),
            });
        }
        let id = match id {
            Some(id) => id,
            None => {
                let id = slot.next_id;
                slot.next_id += 1;
                id
            }
        };
        match slot.waiting.iter_mut().find(|(i, _)| *i == id) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => slot.waiting.push((id, cx.waker().clone())),
        }
        if let Some(holder) = slot.holder.take() {
            holder.wake();
        }
        drop(slot);
        self.id = Some(id);
        Poll::Pending
    }
}

impl<W> Drop for Acquire<'_, W> {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut slot = self.shared.lock();
        slot.waiting.retain(|(i, _)| *i != id);
        // The reading half may be waiting for this one to have had it.
        slot.wake_all();
    }
}

/// Resolves once another task waits for the WebSocket.
struct Contended<'a, W> {
    shared: &'a Shared<W>,
}

impl<W> Future for Contended<'_, W> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut slot = self.shared.lock();
        if slot.waiting.is_empty() {
            slot.holder = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}
