//! The sandbox image: present locally, or pulled with progress; never a silent fallback.

use super::SandboxError;
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;

/// Makes sure `image` is present, pulling it (and reporting progress) when it is not.
pub async fn ensure_image(
    docker: &Docker,
    image: &str,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), SandboxError> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    progress(&format!("pulling sandbox image {image}"));
    let (name, tag) = split_reference(image);
    let options = CreateImageOptionsBuilder::default()
        .from_image(name)
        .tag(tag)
        .build();
    let mut stream = docker.create_image(Some(options), None, None);
    let mut last = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                let Some(status) = info.status else { continue };
                let line = match info.progress_detail.and_then(|d| d.current.zip(d.total)) {
                    Some((current, total)) if total > 0 => {
                        format!("{image}: {status} {}%", current * 100 / total)
                    }
                    _ => format!("{image}: {status}"),
                };
                if line != last {
                    progress(&line);
                    last = line;
                }
            }
            Err(e) => {
                return Err(SandboxError::ImageMissing {
                    image: image.to_string(),
                    detail: e.to_string(),
                })
            }
        }
    }
    docker
        .inspect_image(image)
        .await
        .map(|_| ())
        .map_err(|e| SandboxError::ImageMissing {
            image: image.to_string(),
            detail: e.to_string(),
        })
}

/// `repo[:tag]` (a registry port's colon is not a tag); `@digest` references pass whole.
fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (&image[..i], &image[i + 1..]),
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_at_the_tag_colon_only() {
        assert_eq!(
            split_reference("debian:bookworm-slim"),
            ("debian", "bookworm-slim")
        );
        assert_eq!(split_reference("debian"), ("debian", "latest"));
        assert_eq!(
            split_reference("localhost:5000/sandbox"),
            ("localhost:5000/sandbox", "latest")
        );
        assert_eq!(
            split_reference("localhost:5000/sandbox:1"),
            ("localhost:5000/sandbox", "1")
        );
    }
}
