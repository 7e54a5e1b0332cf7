//! Starting a program with clone(CLONE_VM | CLONE_VFORK), as the C library's posix_spawn
//! starts a process inside, with room for what posix_spawn cannot do.
//!
//! The child borrows the daemon's memory until its exec, on a stack of its own, while the
//! thread that cloned it waits: no page table is copied, however large the daemon and however
//! many fds it holds. Between the clone and the exec it does what its [`Plan`] says: every
//! signal at its default disposition and none blocked, its own process group, a cgroup,
//! limits, a user, death with Kahi (PR_SET_PDEATHSIG), a umask, a directory, its fds. An
//! error's errno is written where the waiting thread reads it, so "No such file or directory"
//! is known rather than guessed from an early exit.
//!
//! The child shares every byte of memory with the daemon's other threads (the HTTP front's
//! keep running while the loop thread waits), so, until its exec:
//! - it allocates nothing, takes no lock, logs nothing and cannot panic: everything it reads
//!   was made before the clone;
//! - it makes raw system calls, never a C library function that does more than its system
//!   call: glibc's and musl's setuid, setgid and setgroups (and musl's setrlimit) make every
//!   thread of the process change, so in the child they would signal the daemon's threads;
//! - it writes its own stack, `errno` (the waiting thread's, unused meanwhile), the result the
//!   waiting thread reads, and the two buffers its plan lends it (socket numbers, pid digits);
//! - every signal is blocked from before the clone until the handlers it inherited are back at
//!   their defaults, so no handler of the daemon ever runs in the child.
//!
//! The daemon holds two fds per program (its pipes), 20,000 with 10,000 programs. A child that
//! copied them all (clone without CLONE_FILES) would take a reference to each while the daemon
//! waits, and its exec would close each again, on a CPU the next spawns need. So the fds a
//! child needs are first put in a few [`Slots`] of low numbers, the child shares the daemon's
//! table (CLONE_FILES) and makes its own with only the fds below the slots' end
//! (`close_range(end, ~0, CLOSE_RANGE_UNSHARE)`, before it touches any), whatever the number
//! of programs. Where the kernel lacks it, or a child needs more fds than there are slots, the
//! child copies the whole table instead.
//!
//! While the loop waits, the child must get a CPU at once, and the loop must get one back as
//! soon as the child lets go. During a start of many programs, the CPUs are busy with the
//! start-up of the programs started just before (their loader, their libraries), and the fair
//! scheduler ran those first: traced in a start of 1,000 `sleep`s on two CPUs, a new child
//! waited for a CPU 0.27 ms on average (up to 1.5 ms), and the loop 0.19 ms once woken, while
//! the other CPU was often idle. So the loop thread asks for the fair scheduler's
//! shortest slice ([`shorten_slice`]), which gives it and its children earlier deadlines: they
//! are picked first, and a woken loop preempts. That changes when they run, not how much CPU
//! they get. Each child takes the loop thread's scheduling back as its last step before the
//! exec, so every program starts with the default slice, as under any other parent.

use std::cell::Cell;
use std::ffi::CStr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::libc::{self, c_char, c_int, c_long, c_void};

use super::signals::{self, SIGACTION_DEFAULT, raw_sigaction, raw_sigmask};

/// A user to become: its ids, and its supplementary groups (set only when Kahi is root).
pub struct User<'a> {
    pub uid: u32,
    pub gid: u32,
    pub groups: &'a [libc::gid_t],
}

/// Everything the child does between the clone and the exec, made before the clone.
pub struct Plan<'a> {
    pub file: &'a CStr,
    /// Pointers to NUL-terminated strings, each array ending with a null pointer.
    pub argv: &'a [*const c_char],
    pub envp: &'a [*const c_char],
    pub directory: Option<&'a CStr>,
    /// What fds 0, 1 and 2 become.
    pub stdio: [RawFd; 3],
    /// A connection that becomes stdin and stdout, over `stdio`'s.
    pub connection: Option<RawFd>,
    /// What fds 3, 4, ... become. The child writes the numbers of its temporary copies over
    /// them (in its own copy of the fd table, but in the daemon's memory).
    pub sockets: &'a mut [RawFd],
    /// `cgroup.procs` of the cgroup to join.
    pub cgroup: Option<RawFd>,
    /// (RLIMIT_*, soft and hard limit).
    pub limits: &'a [(c_int, u64)],
    pub user: Option<User<'a>>,
    pub umask: Option<u32>,
    /// The signal the child gets when the thread that cloned it ends (PR_SET_PDEATHSIG).
    pub death_signal: Option<c_int>,
    /// Room in an envp string for the child's pid as decimal digits and a NUL (21 bytes at
    /// least), in a buffer the caller owns and lends for the child to write.
    pub pid_digits: Option<*mut u8>,
}

/// What the parent hands the child through clone's argument.
struct Child<'a> {
    plan: Plan<'a>,
    /// Shares the daemon's fd table: makes its own of the fds below this first.
    unshare_below: Option<c_int>,
    /// The daemon's pid, taken before the clone: the child's parent, as long as it lives.
    parent: libc::pid_t,
    /// The signals to set back to their defaults (see [`TO_DEFAULT`]).
    to_default: u64,
    /// The scheduling to take back before the exec, where the loop thread changed its own.
    sched: Option<&'a libc::sched_attr>,
    /// 0 once the child is about to exec; the errno of what failed if it returns.
    result: c_int,
    /// The step the child is at ([`Step::code`]), so that a failure says what failed.
    step: c_int,
}

/// What a child was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Its fds, process group, cgroup, signals: what Kahi arranges.
    Prepare,
    /// Setting the plan's limit of this index.
    Limit(usize),
    /// Becoming the plan's user.
    User,
    /// Changing to the plan's directory.
    Directory,
    /// The exec itself.
    Exec,
}

impl Step {
    fn code(self) -> c_int {
        match self {
            Step::Prepare => 0,
            Step::User => 1,
            Step::Directory => 2,
            Step::Exec => 3,
            Step::Limit(i) => 16 + i as c_int,
        }
    }

    fn of(code: c_int) -> Step {
        match code {
            1 => Step::User,
            2 => Step::Directory,
            3 => Step::Exec,
            n if n >= 16 => Step::Limit((n - 16) as usize),
            _ => Step::Prepare,
        }
    }
}

/// A spawn that failed: why, and at which step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub errno: Errno,
    pub step: Step,
}

impl From<Errno> for Failure {
    fn from(errno: Errno) -> Failure {
        Failure { errno, step: Step::Prepare }
    }
}

/// `Child::result` before the child says anything: it died before it could.
const NOT_REACHED: c_int = -1;
/// `Child::result` of a child that could not make a table of its own (a kernel before 5.9):
/// it touched nothing, and the spawn is made again the other way.
const NO_UNSHARE: c_int = -2;

/// How many fds a child can be handed through the slots: stdin, stdout, stderr, a
/// connection, a cgroup and three sockets.
const SLOTS: usize = 8;

/// Low fd numbers the daemon holds (on /dev/null) for the fds of the next child, and a spare
/// /dev/null to put back in them after.
struct Slots {
    fds: [RawFd; SLOTS],
    null: RawFd,
    /// One past the highest slot: the child keeps the fds below it.
    end: c_int,
}

/// The slots, made at the first spawn (None where /dev/null cannot be opened); whether the
/// kernel has CLOSE_RANGE_UNSHARE, until a child finds it has not.
static SLOTS_MADE: std::sync::OnceLock<Option<Slots>> = std::sync::OnceLock::new();
static UNSHARE_WORKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Makes the slots now, at the daemon's start, while fds are plenty and low numbers free: a
/// daemon's fds are then the same before its first spawn and after.
pub fn prepare() {
    slots();
}

fn slots() -> Option<&'static Slots> {
    SLOTS_MADE
        .get_or_init(|| {
            let open = || {
                // SAFETY: open(2) of a constant path; the fd is the daemon's for good.
                let fd =
                    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
                (fd >= 0).then_some(fd)
            };
            let mut opened = Vec::with_capacity(SLOTS + 1);
            while opened.len() < SLOTS + 1 {
                let Some(fd) = open() else {
                    for fd in opened {
                        // SAFETY: closing fds opened just above, used by nothing yet.
                        unsafe { libc::close(fd) };
                    }
                    return None;
                };
                opened.push(fd);
            }
            let null = opened.pop()?;
            let fds: [RawFd; SLOTS] = opened.try_into().ok()?;
            let end = fds.iter().max().copied().unwrap_or(0) + 1;
            Some(Slots { fds, null, end })
        })
        .as_ref()
}

/// The signals each child sets back to their default dispositions, a bit each (bit n - 1 for
/// signal n): all that can be until [`note_dispositions`] has read which the daemon changed.
static TO_DEFAULT: AtomicU64 =
    AtomicU64::new(!(1 << (libc::SIGKILL - 1) | 1 << (libc::SIGSTOP - 1)));

/// Reads which signals the daemon handles or ignores, once it has set them all (at the loop's
/// start): each child then sets back only those, a system call each, rather than all 62 while
/// the loop waits for it.
pub fn note_dispositions() {
    TO_DEFAULT.store(signals::not_default() | LIBC_SIGNALS, Ordering::Relaxed);
}

/// Signals 32 to 34, which the C library takes for itself and may give a handler at any time:
/// glibc at the first thread it starts (SIGSETXID) or cancels, musl at its first timer,
/// cancellation or `setuid` of a process with threads.
const LIBC_SIGNALS: u64 = 0b111 << 31;

/// The loop thread's scheduling before [`shorten_slice`] shortened its slice: what each child
/// takes back before its exec. Unset where the slice was left alone.
static SCHED_BEFORE: std::sync::OnceLock<libc::sched_attr> = std::sync::OnceLock::new();

/// The slice the loop thread asks for: the fair scheduler's shortest, 0.1 ms.
const SHORT_SLICE_NS: u64 = 100_000;

/// Gives the calling thread, the loop's, the fair scheduler's shortest slice (see the module
/// comment). Threads it starts later inherit it, as its children do until their exec; the
/// webhooks' set a policy of their own. Left alone where the thread has another policy, or
/// resets its scheduling on fork (its children would not inherit it). Kernels before 6.12
/// accept the request and ignore it.
pub fn shorten_slice() {
    let size = std::mem::size_of::<libc::sched_attr>();
    // SAFETY: all zeros is a valid value of this plain C struct.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most `size` bytes into `attr`.
    let r = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &raw mut attr, size as u32, 0u32) };
    let reset_on_fork = attr.sched_flags & libc::SCHED_FLAG_RESET_ON_FORK as u64 != 0;
    if r != 0 || attr.sched_policy != libc::SCHED_OTHER as u32 || reset_on_fork {
        return;
    }
    // sched_runtime 0: the default slice.
    let before = libc::sched_attr { size: size as u32, sched_runtime: 0, ..attr };
    let short = libc::sched_attr { sched_runtime: SHORT_SLICE_NS, ..before };
    // SAFETY: the kernel reads `short`, which outlives the call.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const short, 0u32) } == 0 {
        let _ = SCHED_BEFORE.set(before);
    }
}

/// The child's stack. It runs short, non-recursive code (a few KiB in a debug build), and a
/// guard page below it turns an overflow into a crash of the child rather than the daemon's
/// memory overwritten.
const STACK_SIZE: usize = 64 * 1024;
const GUARD_SIZE: usize = 4096;

thread_local! {
    /// The top of this thread's child stack, made at its first spawn and kept: a thread waits
    /// for its child to exec or exit, so one stack per thread is never used twice at once.
    static STACK_TOP: Cell<usize> = const { Cell::new(0) };
}

fn stack_top() -> Result<*mut c_void, Errno> {
    STACK_TOP.with(|top| {
        if top.get() == 0 {
            let len = GUARD_SIZE + STACK_SIZE;
            // SAFETY: a new private anonymous mapping, touched by nothing else; the guard is
            // its lowest page.
            unsafe {
                let base = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                    -1,
                    0,
                );
                if base == libc::MAP_FAILED {
                    return Err(Errno::last());
                }
                if libc::mprotect(base, GUARD_SIZE, libc::PROT_NONE) != 0 {
                    let e = Errno::last();
                    libc::munmap(base, len);
                    return Err(e);
                }
                top.set(base as usize + len);
            }
        }
        Ok(top.get() as *mut c_void)
    })
}

/// Starts the process `plan` describes; returns its pid once it has exec'd, or what failed
/// (the child is then reaped here).
pub fn spawn(mut plan: Plan) -> Result<libc::pid_t, Failure> {
    let needed = 3 + plan.sockets.len() + [plan.connection, plan.cgroup].iter().flatten().count();
    let slots = if needed <= SLOTS && UNSHARE_WORKS.load(std::sync::atomic::Ordering::Relaxed) {
        slots()
    } else {
        None
    };
    let Some(slots) = slots else { return clone_child(plan, None).0.into() };
    // The fds the child needs, into the slots (each a copy, close-on-exec); the plan names
    // the slots instead; the originals are kept for a spawn the other way.
    let original = (plan.stdio, plan.connection, plan.cgroup, plan.sockets.to_vec());
    let mut free = slots.fds.iter();
    let mut into_slot = |fd: &mut RawFd| -> Result<(), Errno> {
        let slot = *free.next().ok_or(Errno::EMFILE)?;
        // SAFETY: dup3 onto a slot, an fd the daemon holds for this and uses for nothing
        // else: no other thread opens or closes it.
        if unsafe { libc::dup3(*fd, slot, libc::O_CLOEXEC) } < 0 {
            return Err(Errno::last());
        }
        *fd = slot;
        Ok(())
    };
    let placed = (|| {
        plan.stdio.iter_mut().try_for_each(&mut into_slot)?;
        plan.connection.iter_mut().try_for_each(&mut into_slot)?;
        plan.cgroup.iter_mut().try_for_each(&mut into_slot)?;
        plan.sockets.iter_mut().try_for_each(&mut into_slot)
    })();
    let outcome = match placed {
        Ok(()) => clone_child(plan, Some(slots.end)),
        Err(e) => (Outcome::Failed(e.into()), plan),
    };
    // The slots used back on /dev/null: the daemon must not hold a child's pipe end through
    // one.
    for &slot in slots.fds.iter().take(needed) {
        // SAFETY: as above.
        unsafe { libc::dup3(slots.null, slot, libc::O_CLOEXEC) };
    }
    match outcome {
        (Outcome::Spawned(pid), _) => Ok(pid),
        (Outcome::Failed(e), _) => Err(e),
        (Outcome::NoUnshare, mut plan) => {
            UNSHARE_WORKS.store(false, std::sync::atomic::Ordering::Relaxed);
            let (stdio, connection, cgroup, sockets) = original;
            (plan.stdio, plan.connection, plan.cgroup) = (stdio, connection, cgroup);
            plan.sockets.copy_from_slice(&sockets);
            clone_child(plan, None).0.into()
        }
    }
}

/// How a clone ended.
enum Outcome {
    Spawned(libc::pid_t),
    Failed(Failure),
    /// The child could not make a table of its own: nothing was done.
    NoUnshare,
}

impl From<Outcome> for Result<libc::pid_t, Failure> {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Spawned(pid) => Ok(pid),
            Outcome::Failed(e) => Err(e),
            Outcome::NoUnshare => Err(Errno::ENOSYS.into()),
        }
    }
}

/// Clones the child, sharing the daemon's fd table when `unshare_below` is given.
fn clone_child(plan: Plan<'_>, unshare_below: Option<c_int>) -> (Outcome, Plan<'_>) {
    let stack = match stack_top() {
        Ok(stack) => stack,
        Err(e) => return (Outcome::Failed(e.into()), plan),
    };
    let to_default = TO_DEFAULT.load(Ordering::Relaxed);
    debug_assert_eq!(
        signals::not_default() & !to_default,
        0,
        "signals given a handler after the loop's start (sys::vfork::note_dispositions)"
    );
    let mut child = Child {
        plan,
        unshare_below,
        to_default,
        parent: nix::unistd::getpid().as_raw(),
        sched: SCHED_BEFORE.get(),
        result: NOT_REACHED,
        step: 0,
    };
    let files = if unshare_below.is_some() { libc::CLONE_FILES } else { 0 };
    // Every signal blocked, the C library's own included, until the child has set its
    // handlers back to the defaults.
    let mask = raw_sigmask(libc::SIG_SETMASK, !0);
    // SAFETY: CLONE_VFORK suspends this thread until the child execs or exits, so `child`
    // and the stack stay alive and unused by this thread for as long as the child uses them;
    // the child follows the rules of the module comment.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack,
            libc::CLONE_VM | libc::CLONE_VFORK | files | libc::SIGCHLD,
            (&raw mut child).cast::<c_void>(),
        )
    };
    let clone_error = Errno::last();
    raw_sigmask(libc::SIG_SETMASK, mask);
    if pid < 0 {
        return (Outcome::Failed(clone_error.into()), child.plan);
    }
    // SAFETY: the child is gone from this memory (exec'd or exited); a volatile read, as the
    // write happened behind the compiler's back.
    let result = unsafe { std::ptr::read_volatile(&raw const child.result) };
    if result == 0 {
        return (Outcome::Spawned(pid), child.plan);
    }
    // The child has exited (it released the memory on its way out): reap it here, as
    // posix_spawn does, rather than leave an exit nobody expects to the event loop.
    loop {
        // SAFETY: plain waitpid on our own child.
        match unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) } {
            -1 if Errno::last() == Errno::EINTR => continue,
            _ => break,
        }
    }
    // SAFETY: as the read of the result.
    let step = Step::of(unsafe { std::ptr::read_volatile(&raw const child.step) });
    let outcome = match result {
        NO_UNSHARE => Outcome::NoUnshare,
        NOT_REACHED => Outcome::Failed(Errno::UnknownErrno.into()),
        errno => Outcome::Failed(Failure { errno: Errno::from_raw(errno), step }),
    };
    (outcome, child.plan)
}

/// The child, on its own stack: prepares, execs, and reports why if the exec is not reached
/// or fails.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Child made by `spawn`, whose thread waits suspended.
    let child = unsafe { &mut *arg.cast::<Child>() };
    let Err(errno) = prepare_and_exec(child);
    // SAFETY: a plain write to the waiting thread's variable, then the child's end.
    unsafe {
        std::ptr::write_volatile(&raw mut child.result, errno);
        libc::syscall(libc::SYS_exit_group, 127 as c_long);
    }
    127
}

/// A system call's result, or the errno it set.
fn check(rc: c_long) -> Result<c_long, c_int> {
    if rc < 0 { Err(Errno::last_raw()) } else { Ok(rc) }
}

/// `to` becomes a copy of `from`, without close-on-exec.
fn place(from: RawFd, to: RawFd) -> Result<(), c_int> {
    // SAFETY: raw system calls on fds; dup3 refuses from == to, where only the flag changes.
    unsafe {
        if from == to {
            check(libc::syscall(libc::SYS_fcntl, to, libc::F_SETFD, 0 as c_long))?;
        } else {
            check(libc::syscall(libc::SYS_dup3, from, to, 0 as c_long))?;
        }
    }
    Ok(())
}

/// Writes `pid` in decimal at `at`, then a NUL.
///
/// # Safety
/// `at` must point to at least 11 writable bytes.
unsafe fn write_digits(pid: u32, at: *mut u8) {
    let mut len = 1;
    let mut rest = pid / 10;
    while rest > 0 {
        len += 1;
        rest /= 10;
    }
    let mut n = pid;
    for i in (0..len).rev() {
        // SAFETY: i < len <= 10, within the room the caller promises.
        unsafe { *at.add(i) = b'0' + (n % 10) as u8 };
        n /= 10;
    }
    // SAFETY: as above, len <= 10.
    unsafe { *at.add(len) = 0 };
}

/// Everything between the clone and the exec, in the child. Returns only on failure.
fn prepare_and_exec(child: &mut Child) -> Result<std::convert::Infallible, c_int> {
    let (p, parent) = (&mut child.plan, child.parent);
    // SAFETY: raw system calls on values and buffers the plan holds, made before the clone
    // and left untouched by the waiting thread; see the module comment.
    unsafe {
        // A table of its own, of the fds below the slots' end, before any fd is touched: until
        // then it is the daemon's.
        if let Some(end) = child.unshare_below {
            let all = c_long::from(u32::MAX);
            if libc::syscall(libc::SYS_close_range, end, all, libc::CLOSE_RANGE_UNSHARE) < 0 {
                return Err(NO_UNSHARE);
            }
        }
        // The daemon's handlers back to the defaults while every signal is still blocked (an
        // ignored signal would also stay ignored across the exec).
        for sig in 1..=64 {
            if child.to_default & (1 << (sig - 1)) != 0 {
                raw_sigaction(sig, Some(&SIGACTION_DEFAULT), None);
            }
        }
        // Its own process group, so a stop can signal the whole group and a terminal's ^C
        // sent to Kahi's group does not reach programs behind its back.
        check(libc::syscall(libc::SYS_setpgid, 0, 0))?;
        // Into its cgroup first, while still privileged: "0" is the writer itself.
        if let Some(fd) = p.cgroup {
            check(libc::syscall(libc::SYS_write, fd, b"0".as_ptr(), 1usize))?;
        }
        // Before the user switch: raising a hard limit needs the privilege root has.
        for (i, &(resource, value)) in p.limits.iter().enumerate() {
            std::ptr::write_volatile(&raw mut child.step, Step::Limit(i).code());
            let limit = [value, value];
            let none = std::ptr::null_mut::<u64>();
            check(libc::syscall(libc::SYS_prlimit64, 0, resource, limit.as_ptr(), none))?;
        }
        std::ptr::write_volatile(&raw mut child.step, Step::User.code());
        if let Some(u) = &p.user {
            // Order matters: groups and gid can only be changed while still root.
            if libc::syscall(libc::SYS_getuid) == 0 {
                check(libc::syscall(libc::SYS_setgroups, u.groups.len(), u.groups.as_ptr()))?;
            }
            check(libc::syscall(libc::SYS_setgid, u.gid))?;
            check(libc::syscall(libc::SYS_setuid, u.uid))?;
        }
        // After the user switch, which clears it. Then: if Kahi died before the request
        // took, the child has been handed to another parent already, and nothing will ever
        // send the signal: it goes now instead.
        std::ptr::write_volatile(&raw mut child.step, Step::Prepare.code());
        if let Some(sig) = p.death_signal {
            check(libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, sig as c_long))?;
            if libc::syscall(libc::SYS_getppid) != parent as c_long {
                libc::syscall(libc::SYS_exit_group, 128 + sig as c_long);
            }
        }
        if let Some(mask) = p.umask {
            libc::syscall(libc::SYS_umask, mask);
        }
        if let Some(dir) = p.directory {
            std::ptr::write_volatile(&raw mut child.step, Step::Directory.code());
            check(libc::syscall(libc::SYS_chdir, dir.as_ptr()))?;
            std::ptr::write_volatile(&raw mut child.step, Step::Prepare.code());
        }
        // Every fd Kahi opens is close-on-exec already; this also covers any the daemon was
        // started with. Kernels before 5.11 lack the flag (EINVAL) or the call (ENOSYS): the
        // daemon marked those at its start.
        libc::syscall(libc::SYS_close_range, 3u32, !0u32, libc::CLOSE_RANGE_CLOEXEC);
        for (to, from) in p.stdio.iter().enumerate() {
            place(*from, to as RawFd)?;
        }
        // inetd style: the connection is stdin and stdout (the pipe stays for stderr).
        if let Some(c) = p.connection {
            place(c, 0)?;
            place(c, 1)?;
        }
        // Sockets: first out of the way (above the target range), then into place: one may
        // already sit on one of the target numbers.
        let first = 3 + p.sockets.len() as c_long;
        for fd in p.sockets.iter_mut() {
            *fd =
                check(libc::syscall(libc::SYS_fcntl, *fd, libc::F_DUPFD_CLOEXEC, first))? as RawFd;
        }
        for (i, fd) in p.sockets.iter().enumerate() {
            place(*fd, 3 + i as RawFd)?;
        }
        if let Some(at) = p.pid_digits {
            write_digits(libc::syscall(libc::SYS_getpid) as u32, at);
        }
        // Last, so that every step above ran with the loop thread's slice.
        if let Some(attr) = child.sched {
            libc::syscall(libc::SYS_sched_setattr, 0, attr as *const libc::sched_attr, 0u32);
        }
        raw_sigmask(libc::SIG_SETMASK, 0);
        // Reached: from here an exit is the program's own, or a failed exec's errno.
        std::ptr::write_volatile(&raw mut child.step, Step::Exec.code());
        std::ptr::write_volatile(&raw mut child.result, 0);
        libc::syscall(libc::SYS_execve, p.file.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        Err(Errno::last_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A real cgroup v2 group: the child writes itself into its `cgroup.procs` between the
    /// clone and the exec, so the program is inside from its first instruction. Where no
    /// cgroup v2 hierarchy is mounted writable, there is nothing to join and the test says so.
    #[test]
    fn a_child_joins_its_cgroup_before_it_execs() {
        let Some(mount) = super::super::cgroup::cgroup2_mount() else {
            return eprintln!("skipped: no cgroup v2 hierarchy is mounted");
        };
        let name = format!("kahi-join-test-{}", std::process::id());
        let group = mount.join(&name);
        if let Err(e) = std::fs::create_dir(&group) {
            return eprintln!("skipped: unable to create {}: {e}", group.display());
        }
        let procs = std::fs::File::options().write(true).open(group.join("cgroup.procs")).unwrap();
        let null = std::fs::File::options().read(true).write(true).open("/dev/null").unwrap();
        let n = null.as_raw_fd();
        let argv = [c"sleep".as_ptr(), c"100".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        let pid = spawn(Plan {
            file: c"/bin/sleep",
            argv: &argv,
            envp: &envp,
            directory: None,
            stdio: [n, n, n],
            connection: None,
            sockets: &mut [],
            cgroup: Some(procs.as_raw_fd()),
            limits: &[],
            user: None,
            umask: None,
            death_signal: None,
            pid_digits: None,
        })
        .unwrap();
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let members = std::fs::read_to_string(group.join("cgroup.procs")).unwrap();
        // SAFETY: signalling and reaping the child started above.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        // An emptied group may take the kernel a moment to let go of.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::remove_dir(&group).is_err() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let line = own.lines().find(|l| l.starts_with("0::")).unwrap_or("");
        assert!(line.ends_with(&format!("/{name}")), "the child is in {line:?}");
        assert_eq!(members.trim(), pid.to_string());
        assert!(!group.exists(), "{} was left behind", group.display());
    }
}
