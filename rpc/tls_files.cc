// PEM loading and checks (see tls_files.h).
#include "rpc/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/file_util.h"

namespace harness {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

std::unique_ptr<BIO, BioFree> MemBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

X509Ptr FirstCert(const std::string& pem) {
  auto bio = MemBio(pem);
  X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return x;
}

KeyPtr PrivateKey(const std::string& pem) {
  auto bio = MemBio(pem);
  KeyPtr k(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return k;
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& what) {
  absl::StatusOr<std::string> s = ReadFile(path);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot read ", path, ": ", s.status().message()));
  }
  return *s;
}

absl::StatusOr<std::string> ReadCert(const std::string& path, const std::string& what) {
  absl::StatusOr<std::string> pem = ReadPem(path, what);
  if (!pem.ok()) return pem.status();
  if (FirstCert(*pem) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", path, " holds no PEM certificate"));
  }
  return pem;
}

// The key parses and matches `cert_pem`'s first certificate.
absl::StatusOr<std::string> ReadKeyFor(const std::string& path, const std::string& what,
                                       const std::string& cert_pem, const std::string& cert_what) {
  absl::StatusOr<std::string> pem = ReadPem(path, what);
  if (!pem.ok()) return pem.status();
  KeyPtr key = PrivateKey(*pem);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", path, " holds no PEM private key (or it is encrypted)"));
  }
  X509Ptr cert = FirstCert(cert_pem);
  if (cert == nullptr || X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", path, " is not the private key of the ", cert_what));
  }
  return pem;
}

}  // namespace

absl::StatusOr<ClientTls> LoadClientTls(const std::string& ca, const std::string& cert,
                                        const std::string& key) {
  ClientTls tls;
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--cert and --key go together: give both or neither");
  }
  if (ca.empty()) {
    if (!cert.empty()) {
      return absl::InvalidArgumentError(
          "--cert and --key need --ca (the CA that signed the controller's certificate)");
    }
    return tls;
  }
  absl::StatusOr<std::string> ca_pem = ReadCert(ca, "--ca");
  if (!ca_pem.ok()) return ca_pem.status();
  tls.ca_pem = *std::move(ca_pem);
  if (!cert.empty()) {
    absl::StatusOr<std::string> cert_pem = ReadCert(cert, "--cert");
    if (!cert_pem.ok()) return cert_pem.status();
    absl::StatusOr<std::string> key_pem = ReadKeyFor(key, "--key", *cert_pem, "--cert " + cert);
    if (!key_pem.ok()) return key_pem.status();
    tls.cert_pem = *std::move(cert_pem);
    tls.key_pem = *std::move(key_pem);
  }
  return tls;
}

absl::Status CheckServerTlsFiles(const std::string& cert, const std::string& key,
                                 const std::string& client_ca) {
  absl::StatusOr<std::string> cert_pem = ReadCert(cert, "harness.tls.cert");
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem =
      ReadKeyFor(key, "harness.tls.key", *cert_pem, "harness.tls.cert " + cert);
  if (!key_pem.ok()) return key_pem.status();
  if (!client_ca.empty()) {
    absl::StatusOr<std::string> ca_pem = ReadCert(client_ca, "harness.tls.client_ca");
    if (!ca_pem.ok()) return ca_pem.status();
  }
  return absl::OkStatus();
}

}  // namespace harness
