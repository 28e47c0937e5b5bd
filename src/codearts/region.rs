//! The region table of the official SDKs: every CodeArts Build operation of a region is served
//! by one host.

/// Regions in the official SDKs' CodeArts Build region tables.
pub const REGIONS: [&str; 12] = [
    "cn-north-4",
    "cn-north-1",
    "cn-east-2",
    "cn-south-1",
    "cn-east-3",
    "cn-south-2",
    "cn-southwest-2",
    "ap-southeast-3",
    "sa-brazil-1",
    "la-north-2",
    "la-south-2",
    "tr-west-1",
];

/// The API endpoint of a known region, or `None` for a region the SDKs do not list.
pub fn endpoint(region: &str) -> Option<String> {
    REGIONS
        .contains(&region)
        .then(|| format!("https://cloudbuild-ext.{region}.myhuaweicloud.com"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions_map_to_the_sdk_host() {
        assert_eq!(
            endpoint("cn-north-4").as_deref(),
            Some("https://cloudbuild-ext.cn-north-4.myhuaweicloud.com")
        );
        assert_eq!(
            endpoint("tr-west-1").as_deref(),
            Some("https://cloudbuild-ext.tr-west-1.myhuaweicloud.com")
        );
        assert_eq!(endpoint("mars-1"), None);
    }
}
