//! The shape of a protection domain: what it does when something arrives.

use core::{convert::Infallible, fmt};

use crate::{Channel, ChannelSet, Child, MessageInfo};

/// A protection domain's event handlers, as in `libmicrokit` and rust-sel4's `sel4-microkit`.
///
/// The runtime calls exactly one method per event, never concurrently and never re-entrantly.
/// An `Err` stops the PD: the runtime prints it with the PD's name and faults, and the monitor
/// reports the fault. Use it for "this PD can no longer do its job", not for a bad request (answer
/// those with an error reply).
///
/// The defaults fail loudly: an event the PD declares no handler for means system.xml and the
/// code disagree, and the PD stops rather than ignore it.
pub trait Handler {
    /// Why the PD stopped.
    type Error: fmt::Display;

    /// Notifications (or IRQs) arrived on `channels` (never empty).
    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        unexpected(format_args!(
            "notification on channels {}",
            channels.display()
        ))
    }

    /// A protected procedure call arrived on `channel`; its message registers are read with
    /// [`get_mr`](crate::get_mr). Return the reply's info after setting its registers with
    /// [`set_mr`](crate::set_mr).
    fn protected(
        &mut self,
        channel: Channel,
        msg_info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        unexpected(format_args!(
            "protected call on channel {} with {msg_info:?}",
            channel.index()
        ))
    }

    /// Child PD `child` faulted; `msg_info` and the message registers describe the fault.
    /// Return `Some(reply)` to resume the child with that reply, `None` to leave it stopped.
    fn fault(
        &mut self,
        child: Child,
        msg_info: MessageInfo,
    ) -> Result<Option<MessageInfo>, Self::Error> {
        unexpected(format_args!(
            "fault of child {} with {msg_info:?}",
            child.index()
        ))
    }
}

#[allow(clippy::panic)] // Handler defaults: an undeclared event is a build mistake; stop the PD.
fn unexpected(what: fmt::Arguments<'_>) -> ! {
    panic!("unexpected {what}")
}

/// A PD with no handlers: it only runs its init and then waits (any event stops it).
#[derive(Debug, Default)]
pub struct NullHandler;

impl NullHandler {
    /// The null handler.
    pub const fn new() -> Self {
        Self
    }
}

impl Handler for NullHandler {
    type Error = Infallible;
}

impl<H: Handler + ?Sized> Handler for &mut H {
    type Error = H::Error;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        (**self).notified(channels)
    }

    fn protected(
        &mut self,
        channel: Channel,
        msg_info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        (**self).protected(channel, msg_info)
    }

    fn fault(
        &mut self,
        child: Child,
        msg_info: MessageInfo,
    ) -> Result<Option<MessageInfo>, Self::Error> {
        (**self).fault(child, msg_info)
    }
}
