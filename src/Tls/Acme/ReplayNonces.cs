namespace Appliance.Tls.Acme;

/// <summary>
/// RFC 8555 §6.5: every POST carries a fresh nonce from the server. Each response hands one out in Replay-Nonce;
/// they are kept here and used once each. When none is left a new one is asked for at newNonce (§7.2).
/// </summary>
public sealed class ReplayNonces
{
    // A handful is plenty: one request in flight uses one, each answer brings one.
    private const int MaxKept = 16;
    private const int MaxNonceLength = 256;
    private readonly Queue<string> _nonces = new();

    public int Count
    {
        get
        {
            lock (_nonces)
            {
                return _nonces.Count;
            }
        }
    }

    /// <summary>Keeps the nonce of a response's Replay-Nonce header; anything that is not one (§6.5.1) is ignored.</summary>
    public void Add(string? nonce)
    {
        if (!IsNonce(nonce))
        {
            return;
        }

        lock (_nonces)
        {
            if (_nonces.Count >= MaxKept)
            {
                _nonces.Dequeue(); // the oldest is the likeliest to have expired
            }

            _nonces.Enqueue(nonce!);
        }
    }

    public bool TryTake(out string nonce)
    {
        lock (_nonces)
        {
            return _nonces.TryDequeue(out nonce!);
        }
    }

    /// <summary>RFC 8555 §6.5.1: the value is base64url without padding, non-empty.</summary>
    public static bool IsNonce(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > MaxNonceLength)
        {
            return false;
        }

        foreach (char c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }
}
