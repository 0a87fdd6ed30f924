using Appliance.Protocol.Hpack;
using static Appliance.Protocol.Tests.Hpack.HpackTestData;

namespace Appliance.Protocol.Tests.Hpack;

public class HpackDynamicTableTests
{
    [Fact]
    public void Evicts_oldest_entries_on_insert_and_counts_32_bytes_of_overhead()
    {
        var table = new HpackDynamicTable(100);
        table.Insert("a"u8, "1"u8); // 34
        table.Insert("b"u8, "2"u8); // 68
        Assert.Equal(68, table.Size);

        table.Insert("c"u8, "3"u8); // 102 > 100: "a" goes
        Assert.Equal([("c", "3"), ("b", "2")], Entries(table));
        Assert.Equal(68, table.Size);
    }

    [Fact]
    public void An_entry_larger_than_the_table_empties_it()
    {
        var table = new HpackDynamicTable(100);
        table.Insert("a"u8, "1"u8);
        table.Insert("big"u8, new byte[70]);

        Assert.Equal(0, table.Count);
        Assert.Equal(0, table.Size);
    }

    [Fact]
    public void Shrinking_evicts_and_growing_keeps()
    {
        var table = new HpackDynamicTable(200);
        table.Insert("a"u8, "1"u8);
        table.Insert("b"u8, "2"u8);
        table.Insert("c"u8, "3"u8);

        table.SetMaxSize(70);
        Assert.Equal([("c", "3"), ("b", "2")], Entries(table));
        table.SetMaxSize(200);
        Assert.Equal(2, table.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => table.SetMaxSize(201));

        table.SetMaxSize(0);
        Assert.Equal(0, table.Count);
        table.Insert("a"u8, "1"u8);
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public void A_name_taken_from_the_entry_being_evicted_is_copied_intact()
    {
        // §4.4: the new entry may reference the name of the entry its insertion evicts.
        var table = new HpackDynamicTable(60);
        table.Insert("custom-name"u8, "value-1"u8); // 50
        table.Insert(table.Name(1), "value-2"u8);

        Assert.Equal([("custom-name", "value-2")], Entries(table));
    }

    [Fact]
    public void Matches_a_reference_model_through_many_wrapping_inserts_and_resizes()
    {
        var random = new Random(4);
        var table = new HpackDynamicTable(512);
        var model = new List<(string Name, string Value)>();
        int modelMax = 512;
        for (int i = 0; i < 20000; i++)
        {
            if (random.Next(50) == 0)
            {
                modelMax = random.Next(0, 513);
                table.SetMaxSize(modelMax);
            }
            else
            {
                string name = new('n', random.Next(0, 40));
                string value = new((char)('a' + random.Next(26)), random.Next(0, random.Next(10) == 0 ? 600 : 120));
                if (random.Next(5) == 0 && model.Count > 0)
                {
                    // reuse a live name, the way a literal with an indexed name does
                    int index = random.Next(1, table.Count + 1);
                    name = model[index - 1].Name;
                    table.Insert(table.Name(index), Latin1(value));
                }
                else
                {
                    table.Insert(Latin1(name), Latin1(value));
                }

                model.Insert(0, (name, value));
            }

            // evict from the model like §4.4 / §4.3
            int size = model.Sum(e => e.Name.Length + e.Value.Length + 32);
            while (size > modelMax)
            {
                (string n, string v) = model[^1];
                size -= n.Length + v.Length + 32;
                model.RemoveAt(model.Count - 1);
            }

            Assert.Equal(size, table.Size);
            Assert.Equal(model, Entries(table));
        }
    }

    [Fact]
    public void Finds_full_and_name_matches_newest_first()
    {
        var table = new HpackDynamicTable(4096);
        table.Insert("content-type"u8, "text/html"u8);
        table.Insert("content-type"u8, "application/json"u8);
        table.Insert("server"u8, "appliance"u8);

        Assert.Equal(3, table.Find("content-type"u8, "text/html"u8, out bool full));
        Assert.True(full);
        Assert.Equal(2, table.Find("content-type"u8, "text/plain"u8, out full));
        Assert.False(full);
        Assert.Equal(0, table.Find("vary"u8, "accept"u8, out full));
        Assert.False(full);
    }
}
