//! What the process keeps of the memory it has freed: the allocator policy of `haven`, in one place
//! (docs/DECISIONS.md D58, D148). Both parts are glibc's; elsewhere they do nothing.

use std::time::Duration;

/// How often the server hands freed heap pages back ([`give_back_freed`]): shorter than the
/// quietest pause a burst of reports is followed by, so a login after it finds the heap trimmed.
pub const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Each password check allocates argon2's working memory (7 MiB; 19 MiB for older hashes). glibc's
/// adaptive threshold soon serves blocks that large from per-thread heaps and keeps them, one per
/// hashing thread: 8 logins left 137 MB resident. A fixed threshold keeps such blocks as their own
/// mappings, returned when freed (D58). Call it first thing in `main`, before any thread exists.
#[allow(unsafe_code, reason = "one allocator parameter, set before any thread exists")]
pub fn keep_large_allocations_returnable() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes no pointers; other threads read the threshold without a lock, so it is
    // set first thing in `main`, before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Returns the whole free pages inside every thread's heap to the system. glibc gives back only
/// the free space at the top of a heap; a burst of new report releases (grids, noise, answers of
/// 100 KB and more on several threads at once) leaves free space below live blocks, and the process
/// kept about 10 MB of it resident for good at 1,000,000 victims (D148). Takes each heap's lock
/// briefly; a page handed back costs one page fault when it is used again.
#[allow(unsafe_code, reason = "malloc_trim takes no pointers and only releases free pages")]
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks the allocator's own free lists under its locks; it touches no
    // memory the program holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims every `every`, for as long as the runtime runs, on a blocking thread: a trim walks every
/// heap, and the runtime that starts this one also carries the webhook sender and the revocation
/// listener. A trim slower than 5 ms is logged, so its cost is seen if it ever grows.
pub async fn give_back_freed(every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let took = tokio::task::spawn_blocking(|| {
            let started = std::time::Instant::now();
            trim();
            started.elapsed()
        })
        .await;
        if let Ok(took) = took
            && took > Duration::from_millis(5)
        {
            tracing::debug!(ms = took.as_millis() as u64, "handing freed heap pages back took long");
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// Resident bytes of this process, from `/proc/self/statm`.
    fn resident_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm is readable");
        let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm's second field");
        // SAFETY: sysconf only reads a system constant.
        #[allow(unsafe_code, reason = "reads the page size")]
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        pages * usize::try_from(page).expect("a page size")
    }

    #[test]
    fn trimming_returns_free_pages_below_live_blocks() {
        // 32 MB in 64 KiB blocks (under glibc's mmap threshold, so from the heap), touched; then
        // every block freed but one in eight, which pins the heap's top and keeps glibc from
        // returning any of it on its own. Other tests of this binary run beside it, so the drop
        // asked for is well under the 28 MB freed.
        let mut blocks: Vec<Vec<u8>> = (0..512).map(|_| std::hint::black_box(vec![1u8; 64 * 1024])).collect();
        let mut kept = Vec::new();
        for (i, block) in blocks.drain(..).enumerate() {
            if i % 8 == 7 {
                kept.push(block);
            }
        }
        let before = resident_bytes();
        super::trim();
        let after = resident_bytes();
        assert!(
            before.saturating_sub(after) >= 16 << 20,
            "a trim should return most of the 28 MB freed: {before} resident before, {after} after"
        );
        drop(std::hint::black_box(kept));
    }
}
