//! Rebuilds the store when a migration is added or changed: `sqlx::migrate!` embeds the
//! `migrations` folder at compile time, and without this cargo would not notice a new file.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
