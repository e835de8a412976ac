//! Does verifying through the project registry cost more than the single-keyring path at
//! 10 000 projects? A 1 KiB GitHub delivery through `WebhookLayer::new(verifier)` and through
//! `WebhookLayer::for_projects` (10 000 projects, `path_after("/webhooks/")`) side by side,
//! `Projects::get` alone, and the heap each project with two live keys holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion};
use http::{Request, Response};
use http_body_util::Full;
use std::hint::black_box;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::{ProjectSelector, WebhookLayer};
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, ManualClock, ProjectId, Projects, Secret, Verifier};

mod common;

/// Counts the heap bytes the calling thread holds: allocations minus frees. Thread-local, so
/// it costs no shared write and the same for both sides of the comparison.
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn held(delta: isize) {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = HELD.try_with(|n| n.set(n.get() + delta));
}

// SAFETY: every method forwards its arguments unchanged to the system allocator, so the
// caller's guarantees are exactly the ones `System` needs. (The crate itself forbids unsafe
// code; this bench binary needs it only because `GlobalAlloc` is an unsafe trait.)
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        held(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        held(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        held(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PROJECTS: usize = 10_000;
/// The project the deliveries go to, in the middle of the generated ids.
const TARGET: usize = PROJECTS / 2;

fn project_id(i: usize) -> ProjectId {
    ProjectId::parse(&format!("prj_{i:016x}")).unwrap()
}

/// `PROJECTS` projects, each a GitHub verifier with its own keyring rotated once with a grace
/// period (two live keys), as a registry serving real integrations holds them.
fn registry() -> Projects {
    let projects = Projects::new();
    for i in 0..PROJECTS {
        let clock = ManualClock::new(common::now());
        let keyring = Keyring::builder()
            .clock(clock)
            .build(Secret::from_bytes(format!("old secret of project {i}")).unwrap());
        keyring
            .rotate(
                Secret::from_bytes(format!("new secret of project {i}")).unwrap(),
                Duration::from_secs(3600),
            )
            .unwrap();
        projects.insert(project_id(i), Verifier::new(GitHub, keyring));
    }
    projects
}

/// Resident set size from `/proc/self/statm`, in bytes (0 where there is none).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Heap and RSS a project with two live keys costs, printed once before the timings.
fn memory_per_project() -> Projects {
    let (heap_before, rss_before) = (HELD.with(Cell::get), rss());
    let projects = registry();
    let (heap_after, rss_after) = (HELD.with(Cell::get), rss());
    assert_eq!(projects.len(), PROJECTS);
    let heap = (heap_after - heap_before) as f64 / PROJECTS as f64;
    let rss = (rss_after as f64 - rss_before as f64) / PROJECTS as f64;
    println!(
        "projects/memory: {PROJECTS} projects, 2 live keys each: heap {heap:.0} bytes/project \
         ({:.2} MiB in all), RSS {rss:.0} bytes/project",
        (heap_after - heap_before) as f64 / (1024.0 * 1024.0),
    );
    projects
}

fn registry_vs_single(c: &mut Criterion, projects: &Projects) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inner = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let body = Bytes::from(common::body(1024));
    let headers = common::headers("github", &body);
    let verifier = common::verifier("github", 1, true);
    // The target project verifies with the same keyring as the single layer.
    projects.insert(project_id(TARGET), verifier.clone());
    let path = format!("/webhooks/{}", project_id(TARGET));

    let single = WebhookLayer::new(verifier).layer(inner);
    let registry =
        WebhookLayer::for_projects(projects.clone(), ProjectSelector::path_after("/webhooks/"))
            .layer(inner);
    let request = || {
        let mut r = Request::post(path.as_str())
            .body(Full::new(body.clone()))
            .unwrap();
        *r.headers_mut() = headers.clone();
        r
    };
    for service in [&single, &registry] {
        let response = rt.block_on(service.clone().oneshot(request())).unwrap();
        assert_eq!(response.status(), 200);
    }

    let small = Projects::new();
    small.insert(project_id(TARGET), common::verifier("github", 1, true));
    let registry1 =
        WebhookLayer::for_projects(small, ProjectSelector::path_after("/webhooks/")).layer(inner);
    let mut group = c.benchmark_group("projects/github-1KiB");
    group.bench_function(BenchmarkId::new("registry", 1), |b| {
        b.iter(|| {
            rt.block_on(async { black_box(registry1.clone().oneshot(request()).await.unwrap()) })
        })
    });
    group.bench_function(BenchmarkId::new("single", PROJECTS), |b| {
        b.iter(|| {
            rt.block_on(async { black_box(single.clone().oneshot(request()).await.unwrap()) })
        })
    });
    group.bench_function(BenchmarkId::new("registry", PROJECTS), |b| {
        b.iter(|| {
            rt.block_on(async { black_box(registry.clone().oneshot(request()).await.unwrap()) })
        })
    });
    group.finish();

    let target = project_id(TARGET).to_string();
    let mut group = c.benchmark_group("projects/get");
    group.bench_function(BenchmarkId::new("found", PROJECTS), |b| {
        b.iter(|| black_box(projects.get(black_box(&target))))
    });
    group.bench_function(BenchmarkId::new("missing", PROJECTS), |b| {
        b.iter(|| black_box(projects.get(black_box("prj_ffffffffffffffff"))))
    });
    group.finish();
}

fn main() {
    let projects = memory_per_project();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    registry_vs_single(&mut criterion, &projects);
    criterion.final_summary();
}
