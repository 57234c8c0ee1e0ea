// `sqlx::migrate!` embeds the migrations at compile time: a migration added
// later must rebuild the crate too.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
