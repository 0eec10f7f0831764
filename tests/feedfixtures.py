"""Feed documents for the newsroom tests: RSS 2.0, Atom, and hostile ones."""

from __future__ import annotations

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel>
  <title>Example News</title><link>https://news.example/</link><language>en-GB</language>
  <item>
    <guid isPermaLink="false">rss-1</guid>
    <title>Council approves &amp; funds the new bridge</title>
    <link>https://news.example/bridge</link>
    <description>&lt;p&gt;The vote was &lt;b&gt;7 to 2&lt;/b&gt;.&lt;/p&gt;
      &lt;script&gt;x()&lt;/script&gt;</description>
    <category>Local News</category>
    <pubDate>Wed, 02 Dec 2026 08:00:00 GMT</pubDate>
    <media:content url="https://img.example/bridge.jpg" medium="image"/>
  </item>
  <item>
    <title>No guid: the link is the id</title>
    <link>https://news.example/no-guid</link>
    <enclosure url="https://img.example/n.png" type="image/png" length="1"/>
  </item>
  <item><title>No link at all is skipped</title></item>
</channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
  <title>Exemple</title><id>urn:feed</id><updated>2026-12-02T08:00:00Z</updated>
  <entry>
    <id>urn:atom:1</id>
    <title>Le pont est vot\xc3\xa9</title>
    <link rel="alternate" href="https://news.example/fr/pont"/>
    <updated>2026-12-02T08:05:00Z</updated>
    <summary type="html">&lt;em&gt;Sept&lt;/em&gt; voix contre deux.</summary>
    <category term="Politique"/>
  </entry>
</feed>
"""

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + b"".join(b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
               for i in range(1, 10))
    + b']>\n<rss version="2.0"><channel><title>x</title><item><title>&lol9;</title>'
    + b"<link>https://news.example/lol</link></item></channel></rss>\n")

EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<rss version="2.0"><channel><title>x</title><item><title>&xxe;</title>'
    b"<link>https://news.example/xxe</link></item></channel></rss>\n")
