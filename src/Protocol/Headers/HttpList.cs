namespace Appliance.Protocol.Headers;

/// <summary>
/// The elements of a comma-separated field value (RFC 9110 §5.6.1): whitespace around each is trimmed and empty
/// elements are skipped. <c>foreach (ReadOnlySpan&lt;byte&gt; element in new HttpList(value))</c>, allocation-free.
/// </summary>
public ref struct HttpList
{
    private ReadOnlySpan<byte> _rest;

    public HttpList(ReadOnlySpan<byte> value)
    {
        _rest = value;
        Current = default;
    }

    public ReadOnlySpan<byte> Current { get; private set; }

    public readonly HttpList GetEnumerator() => this;

    public bool MoveNext()
    {
        while (!_rest.IsEmpty)
        {
            int comma = _rest.IndexOf((byte)',');
            Current = HttpCharacters.TrimWhitespace(comma < 0 ? _rest : _rest[..comma]);
            _rest = comma < 0 ? default : _rest[(comma + 1)..];
            if (!Current.IsEmpty)
            {
                return true;
            }
        }

        return false;
    }
}
