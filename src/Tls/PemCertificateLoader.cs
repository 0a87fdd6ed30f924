using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Appliance.Tls;

/// <summary>
/// Turns PEM files (leaf, optional intermediates, private key) into a
/// <see cref="LoadedCertificate"/>, refusing anything we would not want to serve.
/// Every failure is a <see cref="CertificateLoadException"/> naming the file and the reason.
/// </summary>
public static class PemCertificateLoader
{
    // Real certificate and key files are a few KiB; the cap keeps a wrong path
    // (a log file, a disk image) from being read into memory.
    private const int MaxFileBytes = 1024 * 1024;

    private const string CertificateLabel = "CERTIFICATE";
    private const string Pkcs8Label = "PRIVATE KEY";
    private const string EcLabel = "EC PRIVATE KEY";
    private const string RsaLabel = "RSA PRIVATE KEY";
    private const string EncryptedPkcs8Label = "ENCRYPTED PRIVATE KEY";
    private const int MinRsaKeySize = 2048;

    /// <summary>Loads and validates the files named by <paramref name="source"/>.</summary>
    public static LoadedCertificate Load(CertificateSource source) => Load(source, DateTimeOffset.UtcNow);

    /// <summary>
    /// Wraps a certificate that already carries its private key (ACME, tests) after the same
    /// checks as <see cref="Load(CertificateSource)"/>. The leaf is used as is, not copied.
    /// </summary>
    public static LoadedCertificate FromCertificate(
        string name,
        IReadOnlyList<string> hosts,
        X509Certificate2 leafWithKey,
        X509Certificate2Collection? chain) =>
        FromCertificate(name, hosts, leafWithKey, chain, DateTimeOffset.UtcNow);

    internal static LoadedCertificate Load(CertificateSource source, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(source);
        var files = new FileErrors(source.Name);

        List<X509Certificate2> certificates = ReadCertificates(files, source.CertificatePath, "certificate");
        X509Certificate2 leaf = certificates[0];

        var chain = new X509Certificate2Collection();
        for (int i = 1; i < certificates.Count; i++)
        {
            chain.Add(certificates[i]);
        }

        if (source.ChainPath is not null)
        {
            foreach (X509Certificate2 intermediate in ReadCertificates(files, source.ChainPath, "chain"))
            {
                chain.Add(intermediate);
            }
        }

        string? unsupported = UnsupportedKeyReason(leaf);
        if (unsupported is not null)
        {
            throw files.Error(source.CertificatePath, "certificate", unsupported);
        }

        X509Certificate2 leafWithKey = AttachKey(files, source, certificates);
        leaf.Dispose();
        CheckValidity(leafWithKey, now, reason => files.Error(source.CertificatePath, "certificate", reason));

        OcspStaple.Response? staple = null;
        if (source.OcspResponsePath is { } ocspPath)
        {
            byte[] der;
            try
            {
                der = File.ReadAllBytes(ocspPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw files.Error(ocspPath, "OCSP response", e.Message, e);
            }

            try
            {
                staple = OcspStaple.Read(der, leafWithKey, now);
            }
            catch (FormatException e)
            {
                throw files.Error(ocspPath, "OCSP response", e.Message, e);
            }
        }

        LoadedCertificate loaded;
        try
        {
            loaded = new LoadedCertificate(source.Name, source.Hosts, leafWithKey, chain, offline: false);
        }
        catch (CryptographicException e)
        {
            throw files.Error(source.CertificatePath, "certificate", $"certificate could not be prepared for TLS: {e.Message}", e);
        }

        if (staple is not null)
        {
            OcspStaple.Apply(loaded.Context, staple);
        }

        return loaded;
    }

    internal static LoadedCertificate FromCertificate(
        string name,
        IReadOnlyList<string> hosts,
        X509Certificate2 leafWithKey,
        X509Certificate2Collection? chain,
        DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(hosts);
        ArgumentNullException.ThrowIfNull(leafWithKey);

        CertificateLoadException Error(string reason) => new($"certificate '{name}': {reason}");

        if (!leafWithKey.HasPrivateKey)
        {
            throw Error("the certificate has no private key");
        }

        if (UnsupportedKeyReason(leafWithKey) is { } unsupported)
        {
            throw Error(unsupported);
        }

        CheckValidity(leafWithKey, now, Error);
        return new LoadedCertificate(name, hosts, leafWithKey, chain ?? [], offline: true);
    }

    private static List<X509Certificate2> ReadCertificates(FileErrors files, string path, string kind)
    {
        string text = ReadFile(files, path, kind);
        var certificates = new List<X509Certificate2>();
        foreach (PemBlock block in ReadBlocks(files, path, kind, text))
        {
            if (block.Label != CertificateLabel)
            {
                continue;
            }

            try
            {
                certificates.Add(X509CertificateLoader.LoadCertificate(block.Data));
            }
            catch (CryptographicException e)
            {
                throw files.Error(path, kind, $"certificate #{certificates.Count + 1} (line {block.Line}) is not a valid X.509 certificate: {e.Message}", e);
            }
        }

        if (certificates.Count == 0)
        {
            throw files.Error(path, kind, "no certificate found (expected a '-----BEGIN CERTIFICATE-----' block)");
        }

        return certificates;
    }

    private static X509Certificate2 AttachKey(FileErrors files, CertificateSource source, List<X509Certificate2> certificates)
    {
        string path = source.KeyPath;
        string text = ReadFile(files, path, "key");
        PemBlock? keyBlock = null;
        foreach (PemBlock block in ReadBlocks(files, path, "key", text))
        {
            // Other blocks ('EC PARAMETERS' from 'openssl ecparam -genkey') carry nothing we need.
            if (!block.Label.EndsWith("PRIVATE KEY", StringComparison.Ordinal))
            {
                continue;
            }

            if (keyBlock is not null)
            {
                throw files.Error(path, "key", $"more than one private key (lines {keyBlock.Line} and {block.Line})");
            }

            keyBlock = block;
        }

        if (keyBlock is null)
        {
            throw files.Error(path, "key", "no private key found (expected a '-----BEGIN PRIVATE KEY-----' block)");
        }

        using AsymmetricAlgorithm key = ImportKey(files, path, keyBlock);
        X509Certificate2 leaf = certificates[0];
        string keyKind = key is ECDsa ? "ECDSA" : "RSA";
        string certificateKind = leaf.GetKeyAlgorithm() == LoadedCertificate.EcPublicKeyOid ? "ECDSA" : "RSA";
        if (keyKind != certificateKind)
        {
            throw files.Error(path, "key", $"key does not match certificate '{source.CertificatePath}' (the key is {keyKind}, the certificate's is {LoadedCertificate.DescribeKeyAlgorithm(leaf)})");
        }

        if (TryAttach(leaf, key) is { } leafWithKey)
        {
            return leafWithKey;
        }

        // A common mistake is a chain file with the intermediate first; say so.
        for (int i = 1; i < certificates.Count; i++)
        {
            using X509Certificate2? other = TryAttach(certificates[i], key);
            if (other is not null)
            {
                throw files.Error(path, "key", $"key does not match certificate '{source.CertificatePath}': it matches certificate #{i + 1} in that file ({other.Subject}); the leaf must come first");
            }
        }

        throw files.Error(path, "key", $"key does not match certificate '{source.CertificatePath}' ({leaf.Subject})");
    }

    private static X509Certificate2? TryAttach(X509Certificate2 certificate, AsymmetricAlgorithm key)
    {
        try
        {
            // On Linux the copy holds its own reference to the key, so it outlives 'key'
            // and SslStream accepts it without a PKCS#12 round trip (Windows would need one).
            return key switch
            {
                ECDsa ecdsa when certificate.GetKeyAlgorithm() == LoadedCertificate.EcPublicKeyOid => certificate.CopyWithPrivateKey(ecdsa),
                RSA rsa when certificate.GetKeyAlgorithm() == LoadedCertificate.RsaPublicKeyOid => certificate.CopyWithPrivateKey(rsa),
                _ => null,
            };
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            return null;
        }
    }

    private static AsymmetricAlgorithm ImportKey(FileErrors files, string path, PemBlock block)
    {
        string algorithm = block.Label switch
        {
            EcLabel => LoadedCertificate.EcPublicKeyOid,
            RsaLabel => LoadedCertificate.RsaPublicKeyOid,
            Pkcs8Label => ReadPkcs8Algorithm(files, path, block),
            EncryptedPkcs8Label => throw files.Error(path, "key", "the private key is encrypted; store it unencrypted with mode 0600 ('openssl pkey -in KEY -out PLAIN')"),
            _ => throw files.Error(path, "key", $"unsupported key type '{block.Label}' (only ECDSA and RSA keys are served)"),
        };

        AsymmetricAlgorithm key = algorithm switch
        {
            LoadedCertificate.EcPublicKeyOid => ECDsa.Create(),
            LoadedCertificate.RsaPublicKeyOid => RSA.Create(),
            _ => throw files.Error(path, "key", $"unsupported key type {DescribeOid(algorithm)} (only ECDSA and RSA keys are served)"),
        };

        try
        {
            int read = (block.Label, key) switch
            {
                (EcLabel, ECDsa ecdsa) => Import(ecdsa.ImportECPrivateKey, block.Data),
                (RsaLabel, RSA rsa) => Import(rsa.ImportRSAPrivateKey, block.Data),
                _ => Import(key.ImportPkcs8PrivateKey, block.Data),
            };
            if (read != block.Data.Length)
            {
                throw new CryptographicException("trailing data after the key");
            }

            return key;
        }
        catch (CryptographicException e)
        {
            key.Dispose();
            throw files.Error(path, "key", $"the private key (line {block.Line}) could not be read: {e.Message}", e);
        }
    }

    private delegate void KeyImport(ReadOnlySpan<byte> source, out int bytesRead);

    private static int Import(KeyImport import, byte[] data)
    {
        import(data, out int read);
        return read;
    }

    // PKCS#8 (RFC 5208 §5): SEQUENCE { version INTEGER, privateKeyAlgorithm SEQUENCE { OID, ... }, ... }
    private static string ReadPkcs8Algorithm(FileErrors files, string path, PemBlock block)
    {
        try
        {
            var reader = new AsnReader(block.Data, AsnEncodingRules.BER);
            AsnReader info = reader.ReadSequence();
            info.ReadInteger();
            return info.ReadSequence().ReadObjectIdentifier();
        }
        catch (AsnContentException e)
        {
            throw files.Error(path, "key", $"the private key (line {block.Line}) is not valid PKCS#8: {e.Message}", e);
        }
    }

    private static string? UnsupportedKeyReason(X509Certificate2 certificate)
    {
        string description = LoadedCertificate.DescribeKeyAlgorithm(certificate);
        switch (certificate.GetKeyAlgorithm())
        {
            case LoadedCertificate.EcPublicKeyOid:
                return description is "ECDSA P-256" or "ECDSA P-384" or "ECDSA P-521"
                    ? null
                    : $"unsupported key type {description} (ECDSA must use P-256, P-384 or P-521)";
            case LoadedCertificate.RsaPublicKeyOid:
                using (RSA? rsa = certificate.GetRSAPublicKey())
                {
                    return rsa is not null && rsa.KeySize >= MinRsaKeySize
                        ? null
                        : $"unsupported key type {description} (RSA keys must have at least {MinRsaKeySize} bits)";
                }
            default:
                return $"unsupported key type {description} (only ECDSA and RSA certificates are served)";
        }
    }

    private static void CheckValidity(X509Certificate2 certificate, DateTimeOffset now, Func<string, CertificateLoadException> error)
    {
        DateTime utcNow = now.UtcDateTime;
        if (certificate.NotAfter.ToUniversalTime() < utcNow)
        {
            throw error($"certificate expired on {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z");
        }

        if (certificate.NotBefore.ToUniversalTime() > utcNow)
        {
            throw error($"certificate is not yet valid (valid from {certificate.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z)");
        }
    }

    private static string DescribeOid(string oid) => new Oid(oid).FriendlyName is { } name ? $"{name} ({oid})" : oid;

    private static string ReadFile(FileErrors files, string path, string kind)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new CertificateLoadException($"certificate '{files.Name}': no {kind} file given");
        }

        string text;
        try
        {
            if (Directory.Exists(path))
            {
                throw files.Error(path, kind, "is a directory");
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (stream.Length > MaxFileBytes)
            {
                throw files.Error(path, kind, $"file too large ({stream.Length} bytes; a PEM file is a few KiB)");
            }

            using var reader = new StreamReader(stream, Encoding.UTF8);
            text = reader.ReadToEnd();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw files.Error(path, kind, "file not found", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw files.Error(path, kind, "permission denied", e);
        }
        catch (IOException e)
        {
            throw files.Error(path, kind, $"cannot be read: {e.Message}", e);
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            throw files.Error(path, kind, "file is empty");
        }

        return text;
    }

    /// <summary>
    /// Every '-----BEGIN' in the text must start a well-formed block (RFC 7468): a truncated
    /// or damaged intermediate must not be silently dropped from the chain.
    /// </summary>
    private static List<PemBlock> ReadBlocks(FileErrors files, string path, string kind, string text)
    {
        var blocks = new List<PemBlock>();
        int position = 0;
        while (true)
        {
            int begin = text.IndexOf("-----BEGIN ", position, StringComparison.Ordinal);
            if (begin < 0)
            {
                return blocks;
            }

            ReadOnlySpan<char> candidate = text.AsSpan(begin);
            int line = LineOf(text, begin);
            if (!PemEncoding.TryFind(candidate, out PemFields fields) || fields.Location.Start.Value != 0)
            {
                throw files.Error(path, kind, $"malformed or truncated PEM block at line {line}");
            }

            byte[] data = new byte[fields.DecodedDataLength];
            if (!Convert.TryFromBase64Chars(candidate[fields.Base64Data], data, out int written) || written != data.Length)
            {
                throw files.Error(path, kind, $"malformed base64 in the PEM block at line {line}");
            }

            blocks.Add(new PemBlock(candidate[fields.Label].ToString(), data, line));
            position = begin + fields.Location.End.Value;
        }
    }

    private static int LineOf(string text, int index) => text.AsSpan(0, index).Count('\n') + 1;

    private sealed record PemBlock(string Label, byte[] Data, int Line);

    private readonly struct FileErrors(string name)
    {
        public string Name => name;

        public CertificateLoadException Error(string path, string kind, string reason, Exception? inner = null) =>
            new($"certificate '{name}': {kind} file '{path}': {reason}", path, inner);
    }
}
