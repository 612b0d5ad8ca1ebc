//! The board: two CMSDK APB UARTs (UART0 carries the link to the host,
//! UART1 the log), SysTick as a millisecond clock, and semihosting's exit.
//! Addresses and clock from the AN386 application note, as QEMU models it.

use core::future::poll_fn;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::Poll;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use rfc6455::embedded::Clock;
use rfc6455::Timestamp;

/// The system clock SysTick counts: 25 MHz on the MPS2.
const CPU_HZ: u32 = 25_000_000;

/// A CMSDK APB UART: data, state (bit 0 TX full, bit 1 RX full), control
/// (bit 0 TX enable, bit 1 RX enable), and the baud divider.
pub struct Uart(usize);

/// UART0: the link to the host.
pub const LINK: Uart = Uart(0x4000_4000);
/// UART1: the log.
pub const LOG: Uart = Uart(0x4000_5000);

impl Uart {
    fn reg(&self, offset: usize) -> *mut u32 {
        (self.0 + offset) as *mut u32
    }

    /// Enables sending and receiving, and with `wake` the receive
    /// interrupt (a byte wakes the core from [`idle`]).
    pub fn enable(&self, wake: bool) {
        // SAFETY: the UART's registers, at the address the board puts them.
        unsafe {
            self.reg(0x10).write_volatile(16);
            self.reg(0x08)
                .write_volatile(if wake { 0b1011 } else { 0b11 });
        }
    }

    /// Clears the receive interrupt.
    fn clear_interrupt(&self) {
        // SAFETY: as in `enable`.
        unsafe { self.reg(0x0C).write_volatile(0b10) }
    }

    /// Sends a byte, waiting while the transmitter is full.
    pub fn put(&self, byte: u8) {
        // SAFETY: as in `enable`.
        unsafe {
            while self.reg(0x04).read_volatile() & 1 != 0 {}
            self.reg(0x00).write_volatile(u32::from(byte));
        }
    }

    /// A received byte, if one is waiting.
    pub fn get(&self) -> Option<u8> {
        // SAFETY: as in `enable`.
        unsafe {
            if self.reg(0x04).read_volatile() & 2 == 0 {
                return None;
            }
            Some(self.reg(0x00).read_volatile() as u8)
        }
    }
}

/// The log, for `core::fmt`.
pub struct Log;

impl core::fmt::Write for Log {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            LOG.put(byte);
        }
        Ok(())
    }
}

/// Milliseconds since [`start`], counted by SysTick's exception.
static MILLIS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// UART0's receive interrupt (the board's interrupt 0), the only one
/// enabled: it only wakes the core, so it only needs clearing.
#[exception]
unsafe fn DefaultHandler(_irq: i16) {
    LINK.clear_interrupt();
}

/// UART0's receive interrupt, for the NVIC.
#[derive(Clone, Copy)]
struct Uart0Rx;

// SAFETY: 0 is UART0's receive interrupt on the MPS2 (AN385/AN386).
unsafe impl cortex_m::interrupt::InterruptNumber for Uart0Rx {
    fn number(self) -> u16 {
        0
    }
}

/// Sleeps until an interrupt: a byte on the link or the next millisecond.
/// The poll loop calls it when nothing is ready, so QEMU idles instead of
/// spinning. A byte that arrives between the poll and this sleep is found
/// a millisecond late at most (SysTick wakes the core too).
pub fn idle() {
    cortex_m::asm::wfi();
}

/// Starts the board: both UARTs, and SysTick ticking every millisecond.
pub fn start() {
    LINK.enable(true);
    LOG.enable(false);
    let mut core = cortex_m::Peripherals::take().expect("taken once, at the start");
    // SAFETY: its handler only clears it; no critical section depends on
    // it being masked.
    unsafe { cortex_m::peripheral::NVIC::unmask(Uart0Rx) };
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(CPU_HZ / 1000 - 1);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();
}

/// The milliseconds since the board started.
pub fn millis() -> u32 {
    MILLIS.load(Ordering::Relaxed)
}

/// The board's clock, for the library's timers (handshake and closing
/// timeouts). A millisecond counter wraps after 49 days; a firmware that
/// runs longer would count in 64 bits.
#[derive(Clone, Copy)]
pub struct Ticks;

impl Clock for Ticks {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(u64::from(millis()))
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        poll_fn(|_| match self.now() >= deadline {
            true => Poll::Ready(()),
            false => Poll::Pending,
        })
        .await
    }
}

/// Ends QEMU with `code` as its exit status (semihosting's SYS_EXIT_EXTENDED;
/// QEMU runs with `-semihosting`).
pub fn exit(code: u32) -> ! {
    let block = [0x20026u32, code];
    loop {
        // SAFETY: a semihosting call: r0 the operation, r1 its block.
        unsafe {
            core::arch::asm!("bkpt #0xab", in("r0") 0x20u32, in("r1") block.as_ptr(), options(nostack));
        }
    }
}

/// The generator's state: xorshift32, seeded from the timer.
static STATE: AtomicU32 = AtomicU32::new(0);

/// A masking key. The MPS2 has no random number generator, so keys come
/// from xorshift32 seeded with the cycle count and milliseconds at the
/// first call: unpredictable enough for QEMU, *not* for a product. A chip
/// with a TRNG (STM32's RNG, nRF's RNG, the RP2040's ROSC) feeds it here
/// instead; the library only asks for a `fn() -> [u8; 4]`.
pub fn random_key() -> [u8; 4] {
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        let cycles = cortex_m::peripheral::SYST::get_current();
        x = (cycles ^ millis().rotate_left(16)) | 1;
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    STATE.store(x, Ordering::Relaxed);
    x.to_le_bytes()
}
