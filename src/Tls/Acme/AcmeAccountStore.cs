using System.Security.Cryptography;

namespace Appliance.Tls.Acme;

/// <summary>
/// The ACME account on disk, in the state folder: <c>account.key</c> (ECDSA P-256, PKCS#8 PEM, mode 0600) made once
/// and reused for every directory and certificate, and <c>account.url</c> beside it, the account URL each directory
/// gave for that key (one "directory account" pair per line) so later runs skip newAccount. The key is never logged.
/// </summary>
public sealed class AcmeAccountStore
{
    // Both files are tiny; the cap keeps a wrong file from being read into memory.
    private const int MaxFileBytes = 64 * 1024;
    private readonly object _lock = new();
    private ECDsa? _key;

    public AcmeAccountStore(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.GetFullPath(directory);
    }

    public string Directory { get; }

    public string KeyPath => Path.Combine(Directory, "account.key");

    public string UrlPath => Path.Combine(Directory, "account.url");

    /// <summary>
    /// The account key: read from <see cref="KeyPath"/>, or made and written there (0600) the first time.
    /// <paramref name="created"/> says which. A file that holds something else than a P-256 key is an error, not
    /// replaced: it may be an operator's key, and a new key would mean a new account.
    /// </summary>
    public ECDsa LoadOrCreateKey(out bool created)
    {
        lock (_lock)
        {
            created = false;
            if (_key is not null)
            {
                return _key;
            }

            CreatePrivateDirectory(Directory);
            if (File.Exists(KeyPath))
            {
                return _key = ReadKey(KeyPath);
            }

            ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            PemFileWriter.Write(KeyPath, key.ExportPkcs8PrivateKeyPem(), PemFileWriter.PrivateKeyMode);
            created = true;
            return _key = key;
        }
    }

    /// <summary>The account URL this key has at <paramref name="directoryUrl"/>, from an earlier run.</summary>
    public string? AccountUrl(Uri directoryUrl)
    {
        lock (_lock)
        {
            return ReadUrls().GetValueOrDefault(directoryUrl.AbsoluteUri);
        }
    }

    /// <summary>Remembers (or with null, forgets) the account URL for a directory.</summary>
    public void SetAccountUrl(Uri directoryUrl, string? accountUrl)
    {
        lock (_lock)
        {
            Dictionary<string, string> urls = ReadUrls();
            if (accountUrl is null)
            {
                urls.Remove(directoryUrl.AbsoluteUri);
            }
            else
            {
                urls[directoryUrl.AbsoluteUri] = accountUrl;
            }

            CreatePrivateDirectory(Directory);
            PemFileWriter.Write(UrlPath, string.Concat(urls.Select(kv => $"{kv.Key} {kv.Value}\n")), PemFileWriter.PrivateKeyMode);
        }
    }

    private Dictionary<string, string> ReadUrls()
    {
        var urls = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(UrlPath) || new FileInfo(UrlPath).Length > MaxFileBytes)
        {
            return urls;
        }

        foreach (string line in File.ReadAllLines(UrlPath))
        {
            // A line that is not two absolute https URLs is skipped: the worst case is one newAccount call.
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && IsHttps(parts[0]) && IsHttps(parts[1]))
            {
                urls[parts[0]] = parts[1];
            }
        }

        return urls;
    }

    /// <summary>Mode 0700: the folder holds private keys.</summary>
    public static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(path);
        }
        else
        {
            System.IO.Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static bool IsHttps(string url) => Uri.TryCreate(url, UriKind.Absolute, out Uri? u) && u.Scheme == Uri.UriSchemeHttps;

    private static ECDsa ReadKey(string path)
    {
        if (new FileInfo(path).Length > MaxFileBytes)
        {
            throw new CertificateLoadException($"ACME account key '{path}': file too large for a key", path);
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(path));
            if (key.KeySize != 256 || key.ExportParameters(false).Curve.Oid?.Value != "1.2.840.10045.3.1.7")
            {
                throw new CertificateLoadException($"ACME account key '{path}': not an ECDSA P-256 key (ES256 needs one)", path);
            }

            return key;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new CertificateLoadException($"ACME account key '{path}': cannot be read as an unencrypted ECDSA P-256 PEM key: {e.Message}", path, e);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }
}
