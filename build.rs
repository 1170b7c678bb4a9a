//! Compiles the shipped declarative report plugins (`reports/*.toml`) into the binary, so adding
//! one is adding a file.

use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=reports");
    // `embed_migrations!` reads the files of each migration, but a new migration directory would
    // not rebuild the crate without this.
    println!("cargo:rerun-if-changed=migrations");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from(
        "/// The declarative report plugins shipped in `reports/`: (file, contents).\npub const SHIPPED: &[(&str, &str)] = &[\n",
    );
    for path in files {
        let name = format!("reports/{}", path.file_name().expect("a file name").to_string_lossy());
        writeln!(code, "    ({name:?}, include_str!({:?})),", path.display().to_string()).expect("writing to a String");
    }
    code.push_str("];\n");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shipped_reports.rs");
    std::fs::write(out, code).expect("writing the shipped reports");
}
