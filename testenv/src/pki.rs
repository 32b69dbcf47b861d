//! The certificates of a local control plane: one CA that signs the
//! apiserver's serving certificate and every user's client certificate
//! (CN = user name, O = group), and the service-account signing key.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// A PEM certificate and its PEM (PKCS#8) private key.
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct Pki {
    ca: Issuer<'static, KeyPair>,
    pub ca_pem: String,
    /// The CA's key: the controller-manager signs with it (node certificates).
    pub ca_key_pem: String,
    /// Serving certificate for 127.0.0.1, localhost and the names given.
    pub serving: CertifiedKey,
    /// Service-account token signing key (private, and public in PEM).
    pub service_account_key_pem: String,
    pub service_account_pub_pem: String,
}

impl Pki {
    /// `names` are further names and addresses of the apiserver: the node's
    /// address and the `kubernetes` Service's, for pods that reach it.
    pub fn generate(names: &[String]) -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name("govcloud-local-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_pem = ca_cert.pem();
        let ca_key_pem = ca_key.serialize_pem();
        let ca = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate()?;
        let mut serving_names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        serving_names.extend(names.iter().cloned());
        let mut serving_params = CertificateParams::new(serving_names)?;
        serving_params.distinguished_name = name("kube-apiserver", None);
        serving_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving_params.signed_by(&serving_key, &ca)?;

        let sa_key = KeyPair::generate()?;
        Ok(Self {
            ca,
            ca_pem,
            ca_key_pem,
            serving: CertifiedKey {
                cert_pem: serving_cert.pem(),
                key_pem: serving_key.serialize_pem(),
            },
            service_account_pub_pem: sa_key.public_key_pem(),
            service_account_key_pem: sa_key.serialize_pem(),
        })
    }

    /// A client certificate for `user` in `group` (if any). Kubernetes reads the
    /// user from the common name and the group from the organisation.
    pub fn client(&self, user: &str, group: Option<&str>) -> Result<CertifiedKey, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(user, group);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.ca)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn name(common_name: &str, organisation: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organisation {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}
