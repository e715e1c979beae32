//! The template PD allocates nothing: its start-up report and a call answered, counted by a
//! global allocator in this test binary (`microkit::host::CountingAlloc`). So the heap
//! system.toml gives it (`pds/template/add.toml`) only has to exist, for the crates it links.
// A panic is how a test reports failure.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::rc::Rc;

// psdb's labels, from the typed protocol (interface::msg::psdb).
use interface::msg::psdb::label::{OK, USAGE};
use interface::Usage;
use microkit::host::{set_backend, Backend, CountingAlloc, HostMemory};
use microkit::{Channel, Handler, IrqAckError, MessageInfo};

#[global_allocator]
static COUNTING: CountingAlloc = CountingAlloc::new();

/// psdb's stand-in: answers USAGE; its console is reserved up front so that printing does not
/// allocate in the test either.
struct Kernel {
    mrs: RefCell<[u64; 120]>,
    console: RefCell<String>,
    region: HostMemory,
}

impl Backend for Kernel {
    fn pd_name(&self) -> &str {
        template_pd::NAME
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, _: Channel, info: MessageInfo) -> MessageInfo {
        assert_eq!(info.label(), USAGE);
        Usage {
            disk_used: 1,
            disk_quota: 2,
            index_used: 3,
            index_quota: 4,
            volume_free: 5,
            damaged: false,
        }
        .encode(OK)
        .set_mrs()
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
        let mut c = self.console.borrow_mut();
        assert!(c.capacity() - c.len() >= s.len(), "console reserve");
        c.push_str(s);
    }
    fn memory_region(&self, symbol: &str) -> Option<HostMemory> {
        (symbol == "psdb_vaddr").then(|| self.region.clone())
    }
}

#[test]
fn report_and_calls_allocate_nothing() {
    let kernel = Rc::new(Kernel {
        mrs: RefCell::new([0; 120]),
        console: RefCell::new(String::with_capacity(4096)),
        region: HostMemory::new(template_pd::MIN_PSDB_REGION),
    });
    set_backend(Some(kernel.clone()));
    let region = template_pd::PSDB_REGION.get().unwrap();
    let base = COUNTING.reset_peak();
    let mut pd = template_pd::TemplatePd::new(Channel::new(0), region);
    pd.report().unwrap();
    for label in [template_pd::msg::label::USAGE, 7] {
        let _ = pd
            .protected(Channel::new(1), MessageInfo::new(label, 0))
            .unwrap();
    }
    let peak = COUNTING.peak().saturating_sub(base);
    assert_eq!(peak, 0, "the template allocated {peak} bytes");
    assert!(kernel.console.borrow().contains("uses 1 of 2 bytes"));
    drop(pd);
    set_backend(None);
}
