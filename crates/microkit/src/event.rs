//! The event loop's decisions, free of system calls so the host can test them.
//!
//! The seL4 backend's loop is: [`Wait::first`], then forever: make the system call the [`Wait`]
//! names, decode what arrives with [`Event::decode`], and let [`dispatch`] run the handler and
//! choose the next [`Wait`]. The same steps as `libmicrokit`'s `handler_loop`.

use crate::{
    abi::{BADGE_FAULT_BIT, BADGE_PPC_BIT, FAULT_CHILD_MASK, PPC_CHANNEL_MASK},
    Channel, ChannelSet, Child, Handler, MessageInfo,
};

/// What woke the PD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Notifications or IRQs, possibly several at once.
    Notified(ChannelSet),
    /// A protected procedure call on a channel.
    Protected(Channel, MessageInfo),
    /// A child PD faulted.
    Fault(Child, MessageInfo),
}

impl Event {
    /// Decode the badge and message info a `Recv` returned: bit 62 set means a child's fault
    /// (low 8 bits: child id), else bit 63 set means a PPC (low 6 bits: channel), else every set
    /// bit is a notified channel.
    pub const fn decode(badge: u64, msg_info: MessageInfo) -> Self {
        if badge & (1 << BADGE_FAULT_BIT) != 0 {
            Self::Fault(Child::new((badge & FAULT_CHILD_MASK) as usize), msg_info)
        } else if badge & (1 << BADGE_PPC_BIT) != 0 {
            // The mask keeps the id below 64; ids 62 and 63 are never given out by the tool, but
            // a PPC badge is kernel-made, so decode it without a panic path either way.
            let index = (badge & PPC_CHANNEL_MASK) as usize;
            match Channel::try_new(index) {
                Some(channel) => Self::Protected(channel, msg_info),
                None => Self::Notified(ChannelSet::empty()),
            }
        } else {
            Self::Notified(ChannelSet::from_badge(badge))
        }
    }
}

/// The next system call of the event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `seL4_Recv(INPUT_CAP, reply = REPLY_CAP)`.
    Recv,
    /// `seL4_ReplyRecv(INPUT_CAP, reply_info, reply = REPLY_CAP)`: answer the PPC or fault just
    /// handled, then wait.
    ReplyRecv(MessageInfo),
    /// `seL4_NBSendRecv(MONITOR_EP, info 0, INPUT_CAP, reply = REPLY_CAP)`: a passive PD's first
    /// wait, which tells the monitor init is done so it can take the scheduling context away.
    SignalMonitorRecv,
}

impl Wait {
    /// The loop's first wait.
    pub const fn first(passive: bool) -> Self {
        if passive {
            Self::SignalMonitorRecv
        } else {
            Self::Recv
        }
    }
}

/// Run the handler for `event` and choose the next wait: reply after a PPC, and after a fault
/// the handler answered; otherwise plain receive. An empty notification set (a spurious wake-up)
/// calls nothing.
pub fn dispatch<H: Handler + ?Sized>(handler: &mut H, event: Event) -> Result<Wait, H::Error> {
    Ok(match event {
        Event::Notified(channels) => {
            if !channels.is_empty() {
                handler.notified(channels)?;
            }
            Wait::Recv
        }
        Event::Protected(channel, msg_info) => {
            Wait::ReplyRecv(handler.protected(channel, msg_info)?)
        }
        Event::Fault(child, msg_info) => match handler.fault(child, msg_info)? {
            Some(reply) => Wait::ReplyRecv(reply),
            None => Wait::Recv,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        seen: Vec<String>,
        fail_on_notify: bool,
        resume_children: bool,
    }

    impl Handler for Recorder {
        type Error = &'static str;

        fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
            self.seen.push(format!("notified {}", channels.display()));
            if self.fail_on_notify {
                Err("boom")
            } else {
                Ok(())
            }
        }

        fn protected(
            &mut self,
            ch: Channel,
            info: MessageInfo,
        ) -> Result<MessageInfo, &'static str> {
            self.seen
                .push(format!("protected {} {}", ch.index(), info.label()));
            Ok(MessageInfo::new(info.label() + 1, 1))
        }

        fn fault(
            &mut self,
            child: Child,
            _: MessageInfo,
        ) -> Result<Option<MessageInfo>, &'static str> {
            self.seen.push(format!("fault {}", child.index()));
            Ok(self.resume_children.then(MessageInfo::default))
        }
    }

    const INFO: MessageInfo = MessageInfo::new(7, 2);

    #[test]
    fn decodes_badges() {
        assert_eq!(
            Event::decode(0b1001, INFO),
            Event::Notified(
                ChannelSet::empty()
                    .with(Channel::new(0))
                    .with(Channel::new(3))
            )
        );
        assert_eq!(
            Event::decode((1 << 63) | 5, INFO),
            Event::Protected(Channel::new(5), INFO)
        );
        assert_eq!(
            Event::decode((1 << 62) | 0x1ff, INFO),
            Event::Fault(Child::new(0xff), INFO)
        );
        // A PPC badge's channel is its low 6 bits, whatever else is set.
        assert_eq!(
            Event::decode((1 << 63) | (1 << 8) | 61, INFO),
            Event::Protected(Channel::new(61), INFO)
        );
        // Fault wins over PPC, as in libmicrokit (the tool never sets both).
        assert_eq!(
            Event::decode((1 << 63) | (1 << 62) | 2, INFO),
            Event::Fault(Child::new(2), INFO)
        );
        // Channel ids 62 and 63 do not exist: such a PPC badge decodes to nothing to do.
        assert_eq!(
            Event::decode((1 << 63) | 62, INFO),
            Event::Notified(ChannelSet::empty())
        );
        assert_eq!(Event::decode(0, INFO), Event::Notified(ChannelSet::empty()));
    }

    #[test]
    fn first_wait_depends_on_passive() {
        assert_eq!(Wait::first(false), Wait::Recv);
        assert_eq!(Wait::first(true), Wait::SignalMonitorRecv);
    }

    #[test]
    fn dispatch_replies_only_to_ppcs_and_answered_faults() {
        let mut h = Recorder::default();
        assert_eq!(dispatch(&mut h, Event::decode(0b110, INFO)), Ok(Wait::Recv));
        assert_eq!(
            dispatch(&mut h, Event::decode((1 << 63) | 1, INFO)),
            Ok(Wait::ReplyRecv(MessageInfo::new(8, 1)))
        );
        assert_eq!(
            dispatch(&mut h, Event::decode((1 << 62) | 4, INFO)),
            Ok(Wait::Recv)
        );
        h.resume_children = true;
        assert_eq!(
            dispatch(&mut h, Event::decode((1 << 62) | 4, INFO)),
            Ok(Wait::ReplyRecv(MessageInfo::default()))
        );
        // A spurious wake-up with no channel calls nothing.
        assert_eq!(dispatch(&mut h, Event::decode(0, INFO)), Ok(Wait::Recv));
        assert_eq!(
            h.seen,
            ["notified {1, 2}", "protected 1 7", "fault 4", "fault 4"]
        );
    }

    #[test]
    fn dispatch_passes_handler_errors_up() {
        let mut h = Recorder {
            fail_on_notify: true,
            ..Recorder::default()
        };
        assert_eq!(dispatch(&mut h, Event::decode(1, INFO)), Err("boom"));
    }

    #[test]
    #[should_panic(expected = "unexpected protected call on channel 3")]
    fn default_handlers_fail_loudly() {
        let _ = dispatch(
            &mut crate::NullHandler::new(),
            Event::decode((1 << 63) | 3, INFO),
        );
    }
}
