//! The template PD driven through its handler, with a stand-in kernel that answers its calls
//! to psdb as psdb would (or as a broken psdb would).
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

// psdb's labels, from the typed protocol (interface::msg::psdb).
use interface::msg::psdb::label::{BAD_LABEL, OK, USAGE};
use interface::msg::Message;
use interface::Usage;
use microkit::host::{set_backend, Backend, HostMemory};
use microkit::{Channel, Handler, IrqAckError, MessageInfo};
use template_pd::msg::{self, label as call};
use template_pd::TemplatePd;

/// The channel the tests give the PD to psdb.
const PSDB: Channel = Channel::new(0);

/// What the stand-in psdb answers.
#[derive(Clone, Copy)]
enum Psdb {
    /// These figures.
    Answers(Usage),
    /// An error label.
    Refuses,
    /// OK, but too few registers (a reply that must not be believed).
    Short,
}

struct Kernel {
    psdb: Cell<Psdb>,
    calls: Cell<usize>,
    mrs: RefCell<[u64; 120]>,
    console: RefCell<String>,
    /// The region shared with psdb.
    region: HostMemory,
}

impl Backend for Kernel {
    fn pd_name(&self) -> &str {
        template_pd::NAME
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, ch: Channel, info: MessageInfo) -> MessageInfo {
        assert_eq!(ch, PSDB, "the template calls psdb only");
        self.calls.set(self.calls.get() + 1);
        if info.label() != USAGE {
            return MessageInfo::new(BAD_LABEL, 0);
        }
        match self.psdb.get() {
            Psdb::Answers(u) => u.encode(OK).set_mrs(),
            Psdb::Refuses => MessageInfo::new(BAD_LABEL, 0),
            Psdb::Short => MessageInfo::new(OK, 2),
        }
    }
    fn irq_ack(&self, _: Channel) -> Result<(), IrqAckError> {
        Ok(())
    }
    fn get_mr(&self, i: usize) -> u64 {
        self.mrs.borrow()[i]
    }
    fn set_mr(&self, i: usize, v: u64) {
        self.mrs.borrow_mut()[i] = v;
    }
    fn debug_put_str(&self, s: &str) {
        self.console.borrow_mut().push_str(s);
    }
    fn memory_region(&self, symbol: &str) -> Option<HostMemory> {
        (symbol == "psdb_vaddr").then(|| self.region.clone())
    }
}

const FIGURES: Usage = Usage {
    disk_used: 0,
    disk_quota: 0,
    index_used: 0,
    index_quota: 0,
    volume_free: 268_000_000,
    damaged: false,
};

fn boot(psdb: Psdb) -> (Rc<Kernel>, TemplatePd) {
    let kernel = Rc::new(Kernel {
        psdb: Cell::new(psdb),
        calls: Cell::new(0),
        mrs: RefCell::new([0; 120]),
        console: RefCell::new(String::new()),
        region: HostMemory::new(template_pd::MIN_PSDB_REGION),
    });
    set_backend(Some(kernel.clone()));
    let pd = TemplatePd::new(PSDB, template_pd::PSDB_REGION.get().unwrap());
    (kernel, pd)
}

#[test]
fn it_prints_what_psdb_answers() {
    let (kernel, mut pd) = boot(Psdb::Answers(Usage {
        disk_used: 1536,
        disk_quota: 4096,
        ..FIGURES
    }));
    assert_eq!(pd.report().unwrap().disk_used, 1536);
    assert_eq!(
        kernel.console.borrow().as_str(),
        "template|INFO: psdb answers: namespace template uses 1536 of 4096 bytes (index 0 of 0; \
         268000000 bytes free on the volume)\n"
    );
    set_backend(None);
}

#[test]
fn a_call_is_answered_with_psdbs_figures() {
    let want = Usage {
        disk_used: 7,
        index_used: 3,
        damaged: true,
        ..FIGURES
    };
    let (kernel, mut pd) = boot(Psdb::Answers(want));
    kernel.mrs.borrow_mut().fill(0xdead); // the caller's stale registers are not read
                                          // As a caller would: the typed request in, the typed reply out.
    let request = msg::Request::Usage;
    let reply = pd
        .protected(Channel::new(1), request.encode().set_mrs())
        .unwrap();
    assert_eq!((reply.label(), reply.count()), (call::OK, Usage::REGISTERS));
    let m = Message::received(reply);
    assert_eq!(
        msg::Reply::decode(&request, m.info(), m.mrs()),
        Ok(msg::Reply::Usage(want))
    );
    assert_eq!(kernel.calls.get(), 1);
    set_backend(None);
}

#[test]
fn unknown_calls_and_a_failing_psdb_get_error_replies() {
    let (kernel, mut pd) = boot(Psdb::Refuses);
    for label in [0, 2, 3, u64::MAX >> 12] {
        let r = pd
            .protected(Channel::new(5), MessageInfo::new(label, 4))
            .unwrap();
        assert_eq!((r.label(), r.count()), (call::BAD_CALL, 0), "label {label}");
    }
    assert_eq!(kernel.calls.get(), 0, "an unknown call reaches nobody");
    let r = pd
        .protected(Channel::new(1), MessageInfo::new(call::USAGE, 0))
        .unwrap();
    assert_eq!(r.label(), call::STORAGE);
    assert!(pd.report().is_err());
    assert!(kernel
        .console
        .borrow()
        .starts_with("template|ERROR: psdb did not answer USAGE"));
    // A reply with too few registers is not believed.
    kernel.psdb.set(Psdb::Short);
    let r = pd
        .protected(Channel::new(1), MessageInfo::new(call::USAGE, 0))
        .unwrap();
    assert_eq!(r.label(), call::STORAGE);
    set_backend(None);
}

/// `init` finds the PD's channel in the description the crate was built with: the committed
/// one does not name the template (it then refuses to start, calling nobody); the template
/// system (`make template-test` runs this test built with it) does.
#[test]
fn init_follows_the_description() {
    let (kernel, _) = boot(Psdb::Answers(FIGURES));
    match template_pd::PSDB {
        None => {
            let e = template_pd::init().unwrap_err();
            assert!(matches!(e, template_pd::InitError::NotInSystem), "{e}");
            assert!(e.to_string().contains("no channel template -> psdb"));
            assert_eq!(kernel.calls.get(), 0);
        }
        Some(end) => {
            assert!(end.calls && end.symbol == "psdb_vaddr");
            // The stand-in kernel answers on channel 0: the template's only channel.
            assert_eq!(end.channel, PSDB);
            template_pd::init().unwrap();
            assert_eq!(kernel.calls.get(), 1);
            assert!(kernel
                .console
                .borrow()
                .starts_with("template|INFO: psdb answers: namespace template uses 0 of 0 bytes"));
        }
    }
    set_backend(None);
}

/// The image's start-up: built from a description without the template, `boot` prints why
/// and the PD answers every call "not serving" instead of stopping; with it, it serves.
#[test]
fn boot_serves_or_answers_not_serving() {
    let (kernel, _) = boot(Psdb::Answers(FIGURES));
    let mut image = template_pd::boot();
    let r = image
        .protected(Channel::new(1), msg::Request::Usage.encode().set_mrs())
        .unwrap();
    match template_pd::PSDB {
        None => {
            assert!(image.serving().is_none());
            assert_eq!((r.label(), r.count()), (call::NOT_SERVING, 0));
            assert!(kernel
                .console
                .borrow()
                .starts_with("template|ERROR: not serving: the system description"));
        }
        Some(_) => {
            assert!(image.failed().is_none());
            assert_eq!((r.label(), r.count()), (call::OK, Usage::REGISTERS));
        }
    }
    set_backend(None);
}
