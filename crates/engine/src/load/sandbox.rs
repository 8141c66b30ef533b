//! Running Starlark so that no input crashes the process.
//!
//! The `starlark` crate trusts its input: deep syntax or deeply nested values overflow the
//! native stack, huge values exhaust memory, a loop may never end, and a few inputs make it
//! panic. Every evaluation therefore goes through this module, the one chokepoint:
//!
//! - [`run`] moves loading onto a thread whose stack ([`STACK_SIZE`]) holds the deepest
//!   syntax [`super::limits::check_nesting`] lets through many times over, and values
//!   nested hundreds of thousands deep, with panics caught and reported quietly;
//! - [`guarded`] scopes one file's parse or evaluation: its [`Limits`], its deadline, its
//!   memory account, and a panic inside it becomes a [`LoadError`] naming the file and line;
//! - [`watch`] makes the interpreter check steps, time and memory every 1,000 steps and
//!   memory and time before every statement, and caps the depth of function calls;
//! - [`CountingAllocator`], the binary's global allocator, counts what each evaluation
//!   allocates. [`watch`]'s checks read that count; an allocation that would take an
//!   evaluation past one and a half times its limit, within one statement and before any
//!   check could run, ends the process with exit code 1 and an error naming the file and
//!   statement instead of letting the machine run out of memory;
//! - [`signals`] does the same for a fatal signal on a loading thread: the native stack
//!   overflowing on values nested too deeply, or an abort.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use starlark::codemap::{FileSpan, FileSpanRef};
use starlark::environment::Module;
use starlark::eval::{BeforeStmtFunc, BeforeStmtFuncDyn, Evaluator};

use super::limits::{Limits, MAX_CALL_DEPTH};
use super::{location, render, LoadError};

/// The native stack of a loading thread (only the pages used are committed). It holds
/// [`super::limits::MAX_NESTING`] levels of syntax (parsing and compiling take a few KiB per
/// level) many times over, and values nested hundreds of thousands deep (freezing, garbage
/// collection and `str()` take a few hundred bytes per level). Deeper values, which the
/// memory limit alone does not prevent, overflow it: [`signals`] turns that into an error.
pub const STACK_SIZE: usize = 256 << 20;

/// Why an evaluation was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Steps,
    Time,
    Memory,
}

/// One file's parse or evaluation on this thread.
struct Scope {
    /// The file as users see it (`images/BUILD`).
    display: String,
    limits: Limits,
    /// `None` if the timeout is too far away to represent.
    deadline: Option<Instant>,
    /// Checks the interpreter made so far; it makes one every 1,000 steps.
    checks: u64,
    /// Set once a limit is reached; the interpreter then fails with "Evaluation cancelled".
    stop: Option<Stop>,
    /// The statement being evaluated, for errors raised outside the interpreter.
    statement: Option<FileSpan>,
}

/// The memory account of this thread's evaluation. Plain `Cell`s without destructors, so
/// that the allocator can read them at any time, even while the thread exits.
struct Account {
    /// Bytes allocated minus bytes freed since the scope began.
    used: Cell<isize>,
    /// Past this many bytes an allocation ends the process (0: no scope, no limit).
    fatal: Cell<usize>,
    /// Set while the fatal error is written, whose own allocations are not counted.
    reporting: Cell<bool>,
}

thread_local! {
    static ACCOUNT: Account =
        const { Account { used: Cell::new(0), fatal: Cell::new(0), reporting: Cell::new(false) } };
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
    /// True while a thread loads ([`run`]): its panics and fatal signals are then reported as
    /// load errors.
    static LOADING_THREAD: Cell<bool> = const { Cell::new(false) };
    /// On a thread started with a [`STACK_SIZE`] stack, about the lowest address of that
    /// stack, where it overflows; 0 on other threads.
    static STACK_END: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` (loading one package, `WORKSPACE`, with everything they load) on a thread with
/// a [`STACK_SIZE`] stack, and waits for it: on this thread if it is one (see
/// [`with_loading_stack`]), otherwise on a new one. A panic that escapes [`guarded`]
/// becomes a load error naming `what`.
pub(super) fn run<R: Send>(what: &str, f: impl FnOnce() -> Result<R, LoadError> + Send) -> Result<R, LoadError> {
    quiet_panics_on_loading_threads();
    signals::install();
    if STACK_END.with(Cell::get) != 0 {
        // While `f` runs, this thread's panics and fatal signals are load errors.
        let outer = LOADING_THREAD.with(|q| q.replace(true));
        let result = catch_unwind(AssertUnwindSafe(f));
        LOADING_THREAD.with(|q| q.set(outer));
        return result.unwrap_or_else(|panic| Err(panicked(what, None, panic.as_ref())));
    }
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .name("starlark".to_owned())
            .stack_size(STACK_SIZE)
            .spawn_scoped(s, || {
                LOADING_THREAD.with(|q| q.set(true));
                mark_stack();
                f()
            })
            .map_err(|e| LoadError::Internal(format!("cannot start a thread to load `{what}`: {e}")))?;
        thread.join().unwrap_or_else(|panic| Err(panicked(what, None, panic.as_ref())))
    })
}

/// Records, on a thread just started with a [`STACK_SIZE`] stack, where that stack ends.
fn mark_stack() {
    let here = 0u8;
    STACK_END.with(|e| e.set((&raw const here as usize).saturating_sub(STACK_SIZE)));
}

/// Runs `f` on a new thread with a [`STACK_SIZE`] stack and returns what it returns (a
/// panic goes on in the caller). Loading on that thread ([`run`]) needs no thread of its
/// own: the `executor` binary runs each command this way, so that a command starts one
/// thread for all its loading rather than one per package, and its lazily made caches
/// (the interpreter's, the allocator's) are made once.
pub fn with_loading_stack<R: Send>(f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    std::thread::scope(|s| {
        let thread =
            std::thread::Builder::new().name("main".to_owned()).stack_size(STACK_SIZE).spawn_scoped(s, || {
                mark_stack();
                f()
            })?;
        Ok(thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// Runs one file's parse or evaluation `f` within `limits`: its own deadline and memory
/// account, and a panic inside it becomes an error naming the file and the statement.
pub(super) fn guarded<R>(
    display: &str,
    limits: &Limits,
    f: impl FnOnce() -> Result<R, LoadError>,
) -> Result<R, LoadError> {
    let previous = SCOPE.with(|s| {
        s.replace(Some(Scope {
            display: display.to_owned(),
            limits: *limits,
            deadline: Instant::now().checked_add(limits.timeout),
            checks: 0,
            stop: None,
            statement: None,
        }))
    });
    let saved = ACCOUNT.with(|a| (a.used.replace(0), a.fatal.replace(fatal_bytes(limits))));
    let result = catch_unwind(AssertUnwindSafe(f));
    ACCOUNT.with(|a| {
        a.used.set(saved.0);
        a.fatal.set(saved.1);
    });
    let scope = SCOPE.with(|s| s.replace(previous));
    result.unwrap_or_else(|panic| Err(panicked(display, scope.and_then(|s| s.statement), panic.as_ref())))
}

/// Memory past which an allocation ends the process: one and a half times the limit, the
/// most one statement may add between two checks.
fn fatal_bytes(limits: &Limits) -> usize {
    usize::try_from(fatal_memory(limits)).unwrap_or(usize::MAX)
}

fn fatal_memory(limits: &Limits) -> u64 {
    limits.max_memory.saturating_add(limits.max_memory / 2)
}

/// Makes `eval` check the scope's limits: steps, time and memory every 1,000 steps, memory
/// and time before every statement; and caps the depth of function calls.
pub(super) fn watch<'v, 'a>(eval: &mut Evaluator<'v, 'a, '_>, module: &'a Module<'v>) -> Result<(), LoadError> {
    let internal = |e: anyhow::Error| LoadError::Internal(format!("cannot set up the Starlark interpreter: {e}"));
    eval.set_max_callstack_size(MAX_CALL_DEPTH).map_err(internal)?;
    eval.set_check_cancelled(Box::new(move || every_thousand_steps(module.heap().allocated_bytes())));
    eval.before_stmt_for_dap(BeforeStmtFunc::from_dyn(Box::new(BeforeStatement)));
    Ok(())
}

/// Called by the interpreter every 1,000 steps: true stops the evaluation.
fn every_thousand_steps(heap_bytes: usize) -> bool {
    with_scope(|scope| {
        scope.checks += 1;
        if scope.stop.is_none() && scope.checks.saturating_mul(1000) > scope.limits.max_steps {
            scope.stop = Some(Stop::Steps);
        }
        check_time_and_memory(scope, heap_bytes);
        scope.stop.is_some()
    })
    .unwrap_or(false)
}

fn check_time_and_memory(scope: &mut Scope, heap_bytes: usize) {
    if scope.stop.is_none() && scope.deadline.is_some_and(|d| Instant::now() > d) {
        scope.stop = Some(Stop::Time);
    }
    if scope.stop.is_none() && memory_used(heap_bytes) > scope.limits.max_memory {
        scope.stop = Some(Stop::Memory);
    }
}

/// Runs before every statement: records where evaluation is, checks time and memory.
struct BeforeStatement;

impl<'e> BeforeStmtFuncDyn<'e> for BeforeStatement {
    fn call<'v>(
        &mut self,
        span: FileSpanRef,
        _continued: bool,
        eval: &mut Evaluator<'v, '_, 'e>,
    ) -> starlark::Result<()> {
        let heap_bytes = eval.heap().allocated_bytes();
        let stopped = with_scope(|scope| {
            // The same file as the last statement, almost always: keep its `CodeMap` (a
            // reference count touched on every statement otherwise).
            match &mut scope.statement {
                Some(last) if last.file == *span.file => last.span = span.span,
                statement => *statement = Some(span.to_file_span()),
            }
            check_time_and_memory(scope, heap_bytes);
            scope.stop.map(|stop| stop_message(stop, &scope.limits))
        });
        match stopped.flatten() {
            Some(message) => {
                let mut error = starlark::Error::new_other(anyhow::Error::msg(message));
                error.set_span(span.span, span.file);
                Err(error)
            }
            None => Ok(()),
        }
    }
}

fn with_scope<R>(f: impl FnOnce(&mut Scope) -> R) -> Option<R> {
    SCOPE.with(|s| s.borrow_mut().as_mut().map(f))
}

/// Bytes the scope's evaluation uses: what the allocator counted, or, where the
/// [`CountingAllocator`] is not the global allocator (library tests), the size of the
/// Starlark heap.
fn memory_used(heap_bytes: usize) -> u64 {
    let counted = ACCOUNT.with(|a| a.used.get()).max(0).unsigned_abs();
    counted.max(heap_bytes) as u64
}

/// The error text for a stopped evaluation; the fix names the flag that raises the limit.
fn stop_message(stop: Stop, limits: &Limits) -> String {
    match stop {
        Stop::Steps => format!(
            "evaluation stopped after {} steps (loop iterations and function calls)\n  fix: look for a loop \
             or a recursion that does not end; if the file really needs more steps, pass \
             `--starlark-max-steps N`",
            limits.max_steps
        ),
        Stop::Time => format!(
            "evaluation stopped after {} s\n  fix: look for a loop or a recursion that does not end; if the \
             file really needs more time, pass `--starlark-timeout SECONDS`",
            limits.timeout.as_secs()
        ),
        Stop::Memory => format!(
            "evaluation stopped: it uses more than {} of memory\n  fix: look for values that grow without \
             end (a string or list doubled in a loop, a huge `range`); if the file really needs more memory, \
             pass `--starlark-max-memory MIB`",
            mib(limits.max_memory)
        ),
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// Renders an evaluation error. If a limit stopped the evaluation, the interpreter's
/// "Evaluation cancelled" (which [`every_thousand_steps`] caused) becomes why and the fix,
/// and an error without a place gets the statement being evaluated.
pub(super) fn explain(mut error: starlark::Error) -> LoadError {
    let Some((Some(stop), limits, statement)) = with_scope(|s| (s.stop, s.limits, s.statement.clone())) else {
        return render(error);
    };
    if let (None, Some(statement)) = (error.span(), statement) {
        error.set_span(statement.span, &statement.file);
    }
    let text = render(error).to_string();
    let message = stop_message(stop, &limits);
    LoadError::Diagnostic(match text.strip_prefix("Evaluation cancelled") {
        Some(rest) => format!("{message}{rest}"),
        None => text.replacen("error: Evaluation cancelled", &format!("error: {message}"), 1),
    })
}

/// Fails if a value of `bytes` would take the evaluation past its memory limit; called
/// before such a value is made.
pub(super) fn check_allocation(bytes: u64, heap_bytes: usize) -> anyhow::Result<()> {
    let Some(limits) = with_scope(|s| s.limits) else { return Ok(()) };
    if memory_used(heap_bytes).saturating_add(bytes) > limits.max_memory {
        anyhow::bail!(
            "this would make a value of {bytes} bytes, past the memory limit of {}\n  fix: make it smaller; if \
             the file really needs more memory, pass `--starlark-max-memory MIB`",
            mib(limits.max_memory)
        );
    }
    Ok(())
}

/// Fails if a `range` of `len` elements is longer than the step limit lets a file iterate.
pub(super) fn check_range(len: u64) -> anyhow::Result<()> {
    let Some(limits) = with_scope(|s| s.limits) else { return Ok(()) };
    if len > limits.max_steps {
        anyhow::bail!(
            "`range` of {len} elements: longer than the {} steps a file may take to iterate over it\n  fix: use a \
             shorter range; if the file really needs it, pass `--starlark-max-steps N`",
            limits.max_steps
        );
    }
    Ok(())
}

/// The load error for a panic inside the interpreter.
fn panicked(display: &str, statement: Option<FileSpan>, panic: &(dyn std::any::Any + Send)) -> LoadError {
    let reason = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown reason".to_owned());
    let at = statement.map(|s| format!("{}: ", location(&s))).unwrap_or_default();
    LoadError::Diagnostic(format!(
        "{at}the Starlark interpreter failed while evaluating `{display}`: {reason}\n  fix: this input trips a \
         fault of the interpreter; change the statement{} (and please report it)",
        if at.is_empty() { String::new() } else { format!(" at {}", at.trim_end_matches(": ")) }
    ))
}

/// Installs, once, a panic hook that keeps quiet on loading threads (their panics become
/// load errors) and leaves every other thread's panics to the previous hook.
fn quiet_panics_on_loading_threads() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !LOADING_THREAD.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

/// Counts an allocation of `bytes` against this thread's evaluation, if one is running.
fn charge(bytes: usize) {
    ACCOUNT.with(|a| {
        let fatal = a.fatal.get();
        if fatal == 0 || a.reporting.get() {
            return;
        }
        let used = a.used.get().saturating_add(isize::try_from(bytes).unwrap_or(isize::MAX));
        a.used.set(used);
        if used.max(0).unsigned_abs() > fatal {
            a.reporting.set(true);
            out_of_memory();
        }
    });
}

/// Credits a free of `bytes` to this thread's evaluation, if one is running.
fn credit(bytes: usize) {
    ACCOUNT.with(|a| {
        if a.fatal.get() != 0 && !a.reporting.get() {
            a.used.set(a.used.get().saturating_sub(isize::try_from(bytes).unwrap_or(isize::MAX)));
        }
    });
}

/// Ends the process: an evaluation went past one and a half times its memory limit inside
/// one statement, before any check could stop it.
#[cold]
fn out_of_memory() -> ! {
    let (display, statement, limits) = SCOPE
        .try_with(|s| {
            s.try_borrow().ok().and_then(|s| s.as_ref().map(|s| (s.display.clone(), s.statement.clone(), s.limits)))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| ("a Starlark file".to_owned(), None, Limits::DEFAULT));
    let at = statement.as_ref().map(location).unwrap_or(display);
    eprintln!(
        "error: {at}: evaluation stopped: this statement needs more than {} of memory (the limit is {})\n  fix: \
         make the values this statement builds smaller (a string or list repeated or joined many times); if the \
         file really needs more memory, pass `--starlark-max-memory MIB`",
        mib(fatal_memory(&limits)),
        mib(limits.max_memory)
    );
    std::process::exit(1)
}

/// The global allocator of the `executor` binary: the system allocator, counting what each
/// Starlark evaluation allocates (see the module documentation).
pub struct CountingAllocator;

#[allow(unsafe_code)]
mod allocator {
    use std::alloc::{GlobalAlloc, Layout, System};

    use super::{charge, credit, CountingAllocator};

    // SAFETY: every method forwards to `System` with the same arguments; the accounting
    // around it touches only `const`-initialized thread-locals without destructors, which
    // never allocate, and its one allocating path (the fatal report) counts nothing.
    unsafe impl GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            charge(layout.size());
            // SAFETY: forwarded as is.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            charge(layout.size());
            // SAFETY: forwarded as is.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            credit(layout.size());
            // SAFETY: forwarded as is.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if new_size > layout.size() {
                charge(new_size - layout.size());
            } else {
                credit(layout.size() - new_size);
            }
            // SAFETY: forwarded as is.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

/// The last line of defence: a fatal signal on a loading thread — the native stack
/// overflowing (values nested too deeply for [`STACK_SIZE`]), or an abort inside the
/// interpreter — ends the process with exit code 1 and an error naming the file and the
/// statement, instead of a crash. Signals on other threads go to the handlers installed
/// before (the standard library's stack overflow report, or the default action).
#[cfg(unix)]
#[allow(unsafe_code)]
mod signals {
    use std::fmt::Write as _;
    use std::sync::OnceLock;

    use super::{mib, LOADING_THREAD, SCOPE, STACK_END, STACK_SIZE};

    const SIGNALS: [libc::c_int; 3] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGABRT];

    /// The handlers replaced, in the order of [`SIGNALS`].
    static PREVIOUS: [OnceLock<libc::sigaction>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];

    /// Installs the handler, once per process.
    pub(super) fn install() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            for (signal, previous) in SIGNALS.iter().zip(&PREVIOUS) {
                // SAFETY: both structs are zero-initialized C structs filled in before use;
                // `handler` has the signature `SA_SIGINFO` asks for and only calls
                // async-signal-safe functions or reads memory (see `handler`).
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = handler as *const () as libc::sighandler_t;
                    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                    libc::sigemptyset(&mut action.sa_mask);
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(*signal, &action, &mut old) == 0 {
                        let _ = previous.set(old);
                    }
                }
            }
        });
    }

    /// A fixed buffer to format the error in: the handler must not allocate.
    struct Buffer {
        bytes: [u8; 1024],
        len: usize,
    }

    impl std::fmt::Write for Buffer {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let n = s.len().min(self.bytes.len() - self.len);
            self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }

    extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
        if LOADING_THREAD.try_with(|q| q.get()).unwrap_or(false) {
            // SAFETY: `info` is the kernel's siginfo for this signal.
            let address = if signal == libc::SIGABRT { 0 } else { unsafe { (*info).si_addr() as usize } };
            report(signal, address);
        }
        let index = SIGNALS.iter().position(|s| *s == signal).unwrap_or(0);
        // SAFETY: calls the handler installed before ours with the arguments the kernel gave,
        // as that handler's flags say; or restores it (or the default) and returns, so the
        // signal is delivered again to it.
        unsafe {
            match PREVIOUS[index].get() {
                Some(previous) if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN => {
                    if previous.sa_flags & libc::SA_SIGINFO != 0 {
                        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                            std::mem::transmute(previous.sa_sigaction);
                        f(signal, info, context);
                    } else {
                        let f: extern "C" fn(libc::c_int) = std::mem::transmute(previous.sa_sigaction);
                        f(signal);
                    }
                }
                Some(previous) => {
                    libc::sigaction(signal, previous, std::ptr::null_mut());
                }
                None => {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
        }
    }

    /// Writes the error for `signal` on a loading thread and ends the process.
    fn report(signal: libc::c_int, address: usize) -> ! {
        let mut out = Buffer { bytes: [0; 1024], len: 0 };
        let end = STACK_END.try_with(|e| e.get()).unwrap_or(0);
        let overflow = signal != libc::SIGABRT && end != 0 && address < end + (1 << 20) && address + (64 << 20) > end;
        let _ = SCOPE.try_with(|scope| {
            let scope = scope.try_borrow();
            let scope = scope.as_ref().ok().and_then(|s| s.as_ref());
            let display = scope.map(|s| s.display.as_str()).unwrap_or("a Starlark file");
            let _ = match scope.and_then(|s| s.statement.as_ref()) {
                Some(span) => write!(out, "error: {}:{}: ", span.filename(), span.resolve_span().begin),
                None => write!(out, "error: {display}: "),
            };
            let _ = if overflow {
                write!(
                    out,
                    "evaluation stopped: values or calls nest too deeply for the native stack ({})\n  fix: \
                     flatten the data this statement builds or walks (lists or tuples nested thousands of \
                     levels deep)\n",
                    mib(STACK_SIZE as u64)
                )
            } else {
                write!(
                    out,
                    "the Starlark interpreter crashed (signal {signal}) while evaluating `{display}`\n  fix: \
                     this input trips a fault of the interpreter; change the statement (and please report it)\n"
                )
            };
        });
        // SAFETY: `write` and `_exit` are async-signal-safe; the buffer outlives the call.
        unsafe {
            libc::write(2, out.bytes.as_ptr().cast(), out.len);
            libc::_exit(1)
        }
    }
}

#[cfg(not(unix))]
mod signals {
    pub(super) fn install() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_load_error() {
        let limits = Limits::DEFAULT;
        let err = run("p/BUILD", || guarded("p/BUILD", &limits, || -> Result<(), LoadError> { panic!("boom") }))
            .expect_err("panicked");
        assert_eq!(
            err.to_string(),
            "the Starlark interpreter failed while evaluating `p/BUILD`: boom\n  fix: this input trips a fault of \
             the interpreter; change the statement (and please report it)"
        );
    }

    #[test]
    fn limits_apply_only_inside_a_scope() {
        assert!(check_range(u64::MAX).is_ok());
        assert!(check_allocation(u64::MAX, 0).is_ok());
        let limits = Limits { max_steps: 10, ..Limits::DEFAULT };
        guarded("p/BUILD", &limits, || {
            assert!(check_range(10).is_ok());
            assert!(check_range(11).is_err());
            assert!(check_allocation(limits.max_memory + 1, 0).is_err());
            Ok(())
        })
        .expect("guarded");
    }
}
