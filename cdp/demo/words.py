"""Word lists for believable B2B demo data. Composed locally: no network, no third-party faker.

Weights are relative (they need not sum to 100).
"""

# ------------------------------------------------------------------------------ companies
# Brand-like first parts of company names ("Blue" + "peak" → "Bluepeak").
NAME_STEMS = [
    "Blue", "Red", "Green", "Silver", "Golden", "Iron", "Stone", "North", "South", "East", "West",
    "Bright", "Clear", "Swift", "True", "Summit", "Harbor", "River", "Lake", "Pine", "Oak", "Maple",
    "Cedar", "Birch", "Aspen", "Willow", "Falcon", "Eagle", "Hawk", "Fox", "Wolf", "Bear", "Lion",
    "Star", "Sun", "Moon", "Sky", "Cloud", "Storm", "Thunder", "Frost", "Ember", "Flame", "Spark",
    "Nova", "Astra", "Vertex", "Apex", "Zenith", "Prime", "Core", "Quantum", "Vector", "Matrix",
    "Nimbus", "Orbit", "Pulse", "Signal", "Beacon", "Anchor", "Compass", "Atlas", "Titan", "Orion",
    "Vega", "Polar", "Arctic", "Coastal", "Prairie", "Canyon", "Mesa", "Ridge", "Valley", "Meadow",
    "Granite", "Cobalt", "Indigo", "Crimson", "Amber", "Jade", "Onyx", "Ivory", "Copper", "Bronze",
    "Velvet", "Crystal", "Keystone", "Cornerstone", "Landmark", "Pioneer", "Frontier", "Liberty",
    "Heritage", "Legacy", "Union", "United", "Allied", "Pacific", "Atlantic", "Midwest", "Central",
    "Metro", "Urban", "Global", "Omni", "Pan", "Inter", "Trans", "Tri", "Quad", "Hex", "Octa",
    "Lumen", "Lux", "Aero", "Hydro", "Terra", "Geo", "Bio", "Eco", "Agri", "Medi", "Cardio",
    "Neuro", "Info", "Data", "Cyber", "Techno", "Digi", "Net", "Web", "Soft", "Logi", "Fin", "Cap",
    "Ever", "Next", "New", "High", "Deep", "Open", "Fair", "Good", "Bold", "Kind", "Wise", "Rapid",
    "Steady", "Solid", "Noble", "Royal", "Grand", "Pinnacle", "Crest", "Horizon", "Meridian",
]
NAME_ROOTS = [
    "peak", "point", "field", "bridge", "gate", "way", "path", "stone", "wood", "brook", "ridge",
    "view", "line", "works", "craft", "forge", "mark", "wave", "light", "stream", "port", "haven",
    "land", "ford", "dale", "wick", "ton", "bury", "side", "crest", "spring", "shore", "well",
    "rock", "star", "wing", "leaf", "root", "seed", "grove", "hill", "vale", "moor", "reach",
    "scape", "sphere", "logic", "nexus", "sync", "flow", "stack", "base", "hub", "loop", "grid",
    "ware", "tek", "ify", "ly", "io", "era", "ora", "ium", "ex", "on", "ix", "ara", "elle",
]
# Standalone words that read as surnames/places, used as "Hartley Foods", "Brennan & Cole".
NAME_WORDS = [
    "Hartley", "Brennan", "Whitmore", "Ashford", "Caldwell", "Sterling", "Langley", "Prescott",
    "Holloway", "Kingsley", "Radcliffe", "Thornton", "Winslow", "Harrington", "Sinclair", "Beaumont",
    "Carlisle", "Davenport", "Fairbanks", "Gresham", "Hastings", "Lockwood", "Mercer", "Pemberton",
    "Rutherford", "Stanton", "Talbot", "Underwood", "Vance", "Wakefield", "Yardley", "Abbott",
    "Barrington", "Chandler", "Donovan", "Ellison", "Fletcher", "Garrison", "Hendricks", "Ingram",
    "Jennings", "Kessler", "Lambert", "Maddox", "Norwood", "Osborne", "Parrish", "Quinlan", "Ramsey",
    "Sheridan", "Townsend", "Vaughn", "Whitaker", "Bradford", "Colby", "Dalton", "Easton", "Foster",
]
LINKING_WORDS = ["&", "and"]

# Industry → SIC codes that match it, words that fit its company names, revenue per employee
# (USD, median), and how common it is among B2B accounts.
INDUSTRIES = [
    {
        "name": "Software", "weight": 14, "revenue_per_employee": 260_000,
        "sic": [("7372", "Prepackaged Software"), ("7371", "Computer Programming Services"), ("7373", "Computer Integrated Systems Design")],
        "suffixes": ["Software", "Labs", "Systems", "Technologies", "Cloud", "Data", "AI", "Analytics", "Digital", "Apps"],
    },
    {
        "name": "IT Services", "weight": 8, "revenue_per_employee": 180_000,
        "sic": [("7374", "Computer Processing and Data Preparation"), ("7379", "Computer Related Services, NEC"), ("7376", "Computer Facilities Management")],
        "suffixes": ["Consulting", "Solutions", "IT", "Technology Group", "Networks", "Managed Services", "Integration"],
    },
    {
        "name": "Financial Services", "weight": 7, "revenue_per_employee": 420_000,
        "sic": [("6021", "National Commercial Banks"), ("6211", "Security Brokers and Dealers"), ("6282", "Investment Advice"), ("6141", "Personal Credit Institutions")],
        "suffixes": ["Capital", "Financial", "Bank", "Partners", "Investments", "Advisors", "Asset Management", "Credit"],
    },
    {
        "name": "Insurance", "weight": 3, "revenue_per_employee": 480_000,
        "sic": [("6311", "Life Insurance"), ("6331", "Fire, Marine and Casualty Insurance"), ("6411", "Insurance Agents, Brokers and Service")],
        "suffixes": ["Insurance", "Assurance", "Mutual", "Underwriters", "Risk Partners"],
    },
    {
        "name": "Healthcare", "weight": 6, "revenue_per_employee": 120_000,
        "sic": [("8062", "General Medical and Surgical Hospitals"), ("8071", "Medical Laboratories"), ("8011", "Offices and Clinics of Doctors of Medicine")],
        "suffixes": ["Health", "Medical Group", "Care", "Clinics", "Health System", "Diagnostics"],
    },
    {
        "name": "Pharmaceuticals", "weight": 3, "revenue_per_employee": 600_000,
        "sic": [("2834", "Pharmaceutical Preparations"), ("2836", "Biological Products"), ("2835", "In Vitro Diagnostic Substances")],
        "suffixes": ["Pharma", "Therapeutics", "Biosciences", "Bio", "Pharmaceuticals", "Life Sciences"],
    },
    {
        "name": "Medical Devices", "weight": 2, "revenue_per_employee": 330_000,
        "sic": [("3841", "Surgical and Medical Instruments"), ("3845", "Electromedical Apparatus"), ("3842", "Orthopedic and Surgical Appliances")],
        "suffixes": ["Medical", "Devices", "Surgical", "MedTech", "Instruments"],
    },
    {
        "name": "Manufacturing", "weight": 9, "revenue_per_employee": 250_000,
        "sic": [("3559", "Special Industry Machinery, NEC"), ("3569", "General Industrial Machinery, NEC"), ("3499", "Fabricated Metal Products, NEC"), ("3089", "Plastics Products, NEC")],
        "suffixes": ["Manufacturing", "Industries", "Machinery", "Fabrication", "Components", "Engineering", "Industrial"],
    },
    {
        "name": "Electronics", "weight": 3, "revenue_per_employee": 380_000,
        "sic": [("3674", "Semiconductors and Related Devices"), ("3672", "Printed Circuit Boards"), ("3679", "Electronic Components, NEC")],
        "suffixes": ["Electronics", "Semiconductor", "Circuits", "Microsystems", "Photonics"],
    },
    {
        "name": "Telecommunications", "weight": 3, "revenue_per_employee": 450_000,
        "sic": [("4813", "Telephone Communications"), ("4812", "Radiotelephone Communications"), ("4899", "Communications Services, NEC")],
        "suffixes": ["Telecom", "Communications", "Wireless", "Connect", "Broadband", "Networks"],
    },
    {
        "name": "Retail", "weight": 6, "revenue_per_employee": 200_000,
        "sic": [("5311", "Department Stores"), ("5961", "Catalog and Mail-Order Houses"), ("5651", "Family Clothing Stores"), ("5731", "Radio, TV and Consumer Electronics Stores")],
        "suffixes": ["Retail", "Stores", "Outfitters", "Market", "Goods", "Brands", "Supply"],
    },
    {
        "name": "Wholesale Distribution", "weight": 3, "revenue_per_employee": 700_000,
        "sic": [("5045", "Computers and Peripheral Equipment and Software"), ("5065", "Electronic Parts and Equipment, NEC"), ("5084", "Industrial Machinery and Equipment")],
        "suffixes": ["Distribution", "Supply", "Wholesale", "Trading", "Distributors"],
    },
    {
        "name": "Transportation and Logistics", "weight": 4, "revenue_per_employee": 230_000,
        "sic": [("4213", "Trucking, Except Local"), ("4731", "Arrangement of Transportation of Freight and Cargo"), ("4512", "Air Transportation, Scheduled"), ("4412", "Deep Sea Foreign Transportation of Freight")],
        "suffixes": ["Logistics", "Freight", "Transport", "Shipping", "Express", "Cargo", "Carriers"],
    },
    {
        "name": "Energy and Utilities", "weight": 3, "revenue_per_employee": 900_000,
        "sic": [("4911", "Electric Services"), ("1311", "Crude Petroleum and Natural Gas"), ("4924", "Natural Gas Distribution"), ("4941", "Water Supply")],
        "suffixes": ["Energy", "Power", "Utilities", "Renewables", "Solar", "Resources", "Grid"],
    },
    {
        "name": "Construction", "weight": 3, "revenue_per_employee": 280_000,
        "sic": [("1542", "General Contractors, Nonresidential Buildings"), ("1731", "Electrical Work"), ("1611", "Highway and Street Construction")],
        "suffixes": ["Construction", "Builders", "Contracting", "Building Group", "Infrastructure"],
    },
    {
        "name": "Education", "weight": 3, "revenue_per_employee": 90_000,
        "sic": [("8221", "Colleges, Universities and Professional Schools"), ("8299", "Schools and Educational Services, NEC"), ("8243", "Data Processing Schools")],
        "suffixes": ["Learning", "Academy", "Education", "Institute", "University", "Training"],
    },
    {
        "name": "Professional Services", "weight": 6, "revenue_per_employee": 210_000,
        "sic": [("8742", "Management Consulting Services"), ("8711", "Engineering Services"), ("8111", "Legal Services"), ("8721", "Accounting, Auditing and Bookkeeping Services")],
        "suffixes": ["Consulting", "Advisory", "Partners", "Associates", "Group", "LLP"],
    },
    {
        "name": "Marketing and Advertising", "weight": 3, "revenue_per_employee": 170_000,
        "sic": [("7311", "Advertising Agencies"), ("8743", "Public Relations Services"), ("7331", "Direct Mail Advertising Services")],
        "suffixes": ["Media", "Creative", "Agency", "Marketing", "Brand Studio", "Communications"],
    },
    {
        "name": "Media and Entertainment", "weight": 2, "revenue_per_employee": 300_000,
        "sic": [("2711", "Newspapers: Publishing or Publishing and Printing"), ("7812", "Motion Picture and Video Tape Production"), ("4841", "Cable and Other Pay Television Services")],
        "suffixes": ["Media", "Studios", "Entertainment", "Publishing", "Broadcasting"],
    },
    {
        "name": "Automotive", "weight": 2, "revenue_per_employee": 400_000,
        "sic": [("3711", "Motor Vehicles and Passenger Car Bodies"), ("3714", "Motor Vehicle Parts and Accessories"), ("5511", "Motor Vehicle Dealers, New and Used")],
        "suffixes": ["Automotive", "Motors", "Mobility", "Auto Parts", "Vehicles"],
    },
    {
        "name": "Aerospace and Defense", "weight": 1, "revenue_per_employee": 350_000,
        "sic": [("3721", "Aircraft"), ("3812", "Search, Detection, Navigation, Guidance and Aeronautical Systems"), ("3728", "Aircraft Parts and Auxiliary Equipment, NEC")],
        "suffixes": ["Aerospace", "Aviation", "Defense Systems", "Avionics", "Space"],
    },
    {
        "name": "Real Estate", "weight": 2, "revenue_per_employee": 320_000,
        "sic": [("6531", "Real Estate Agents and Managers"), ("6798", "Real Estate Investment Trusts"), ("6552", "Land Subdividers and Developers")],
        "suffixes": ["Properties", "Realty", "Real Estate", "Estates", "Development"],
    },
    {
        "name": "Hospitality", "weight": 2, "revenue_per_employee": 80_000,
        "sic": [("7011", "Hotels and Motels"), ("5812", "Eating Places"), ("4724", "Travel Agencies")],
        "suffixes": ["Hotels", "Hospitality", "Resorts", "Travel", "Restaurants"],
    },
    {
        "name": "Chemicals", "weight": 1, "revenue_per_employee": 550_000,
        "sic": [("2821", "Plastics Materials, Synthetic Resins"), ("2869", "Industrial Organic Chemicals, NEC"), ("2851", "Paints, Varnishes, Lacquers")],
        "suffixes": ["Chemicals", "Materials", "Polymers", "Coatings"],
    },
    {
        "name": "Food and Beverage", "weight": 2, "revenue_per_employee": 300_000,
        "sic": [("2086", "Bottled and Canned Soft Drinks"), ("2099", "Food Preparations, NEC"), ("2033", "Canned Fruits, Vegetables, Preserves")],
        "suffixes": ["Foods", "Beverages", "Brewing", "Kitchens", "Farms", "Provisions"],
    },
    {
        "name": "Government", "weight": 1, "revenue_per_employee": 150_000,
        "sic": [("9199", "General Government, NEC"), ("9311", "Public Finance, Taxation and Monetary Policy")],
        "suffixes": ["Authority", "Agency", "Council", "Department"],
    },
    {
        "name": "Nonprofit", "weight": 1, "revenue_per_employee": 70_000,
        "sic": [("8399", "Social Services, NEC"), ("8641", "Civic, Social and Fraternal Associations"), ("8733", "Noncommercial Research Organizations")],
        "suffixes": ["Foundation", "Alliance", "Trust", "Society", "Institute"],
    },
]

ACCOUNT_TIERS = [("Enterprise", 10_000), ("Mid-Market", 500), ("SMB", 0)]  # by employees ≥
ACCOUNT_TYPES = [("Prospect", 70), ("Customer", 20), ("Partner", 4), ("Former Customer", 6)]
TECH_STACK = [
    "Salesforce", "HubSpot", "Microsoft Dynamics", "SAP", "Oracle", "Workday", "ServiceNow", "Snowflake",
    "Databricks", "AWS", "Azure", "Google Cloud", "Slack", "Zendesk", "Shopify", "Tableau", "Looker",
]

# ------------------------------------------------------------------------------ geography
# Country → ISO code, weight, ccTLD, sales region, currency, name pools, regions (states/
# provinces) with cities, phone format, legal suffixes.
COUNTRIES = [
    {
        "name": "United States", "code": "US", "weight": 46, "tld": "com", "sales_region": "North America", "currency": "USD",
        "names": [("anglo", 68), ("hispanic", 12), ("indian", 8), ("chinese", 6), ("german", 3), ("italian", 3)],
        "legal": ["Inc.", "LLC", "Corp.", "", "", ""],
        "phone": "+1 {area} 555-01{d2}", "areas": ["212", "415", "312", "617", "512", "206", "303", "404", "646", "408", "305", "713"],
        "regions": {
            "California": ["San Francisco", "Los Angeles", "San Diego", "San Jose", "Palo Alto", "Irvine"],
            "New York": ["New York", "Brooklyn", "Rochester", "Albany"],
            "Texas": ["Austin", "Dallas", "Houston", "San Antonio", "Plano"],
            "Massachusetts": ["Boston", "Cambridge", "Waltham", "Burlington"],
            "Illinois": ["Chicago", "Naperville", "Evanston"],
            "Washington": ["Seattle", "Bellevue", "Redmond", "Spokane"],
            "Georgia": ["Atlanta", "Alpharetta", "Savannah"],
            "Colorado": ["Denver", "Boulder", "Colorado Springs"],
            "Florida": ["Miami", "Tampa", "Orlando", "Jacksonville"],
            "North Carolina": ["Charlotte", "Raleigh", "Durham"],
            "Virginia": ["Arlington", "Reston", "Richmond"],
            "Pennsylvania": ["Philadelphia", "Pittsburgh"],
            "Ohio": ["Columbus", "Cleveland", "Cincinnati"],
            "Minnesota": ["Minneapolis", "Saint Paul"],
            "Utah": ["Salt Lake City", "Lehi", "Provo"],
            "New Jersey": ["Newark", "Jersey City", "Princeton"],
        },
    },
    {
        "name": "United Kingdom", "code": "GB", "weight": 9, "tld": "co.uk", "sales_region": "EMEA", "currency": "GBP",
        "names": [("anglo", 85), ("indian", 10), ("italian", 5)],
        "legal": ["Ltd", "plc", "Ltd", ""],
        "phone": "+44 20 7946 0{d3}",
        "regions": {
            "England": ["London", "Manchester", "Birmingham", "Leeds", "Bristol", "Cambridge", "Oxford", "Reading"],
            "Scotland": ["Edinburgh", "Glasgow", "Aberdeen"],
            "Wales": ["Cardiff", "Swansea"],
            "Northern Ireland": ["Belfast"],
        },
    },
    {
        "name": "Germany", "code": "DE", "weight": 8, "tld": "de", "sales_region": "EMEA", "currency": "EUR",
        "names": [("german", 90), ("anglo", 5), ("italian", 5)],
        "legal": ["GmbH", "AG", "GmbH", "SE"],
        "phone": "+49 30 {d7}",
        "regions": {
            "Bavaria": ["Munich", "Nuremberg", "Augsburg"],
            "Berlin": ["Berlin"],
            "Hamburg": ["Hamburg"],
            "Hesse": ["Frankfurt", "Wiesbaden", "Darmstadt"],
            "North Rhine-Westphalia": ["Cologne", "Düsseldorf", "Dortmund", "Essen"],
            "Baden-Württemberg": ["Stuttgart", "Karlsruhe", "Heidelberg", "Walldorf"],
        },
    },
    {
        "name": "Canada", "code": "CA", "weight": 5, "tld": "ca", "sales_region": "North America", "currency": "CAD",
        "names": [("anglo", 70), ("french", 15), ("chinese", 8), ("indian", 7)],
        "legal": ["Inc.", "Ltd.", ""],
        "phone": "+1 {area} 555-01{d2}", "areas": ["416", "604", "514", "403", "613"],
        "regions": {
            "Ontario": ["Toronto", "Ottawa", "Waterloo", "Mississauga"],
            "British Columbia": ["Vancouver", "Victoria", "Burnaby"],
            "Quebec": ["Montreal", "Quebec City"],
            "Alberta": ["Calgary", "Edmonton"],
        },
    },
    {
        "name": "France", "code": "FR", "weight": 5, "tld": "fr", "sales_region": "EMEA", "currency": "EUR",
        "names": [("french", 92), ("anglo", 3), ("italian", 5)],
        "legal": ["SA", "SAS", "SARL", ""],
        "phone": "+33 1 {d2} {d2} {d2} {d2}",
        "regions": {
            "Île-de-France": ["Paris", "Boulogne-Billancourt", "Nanterre"],
            "Auvergne-Rhône-Alpes": ["Lyon", "Grenoble"],
            "Provence-Alpes-Côte d'Azur": ["Marseille", "Nice", "Sophia Antipolis"],
            "Occitanie": ["Toulouse", "Montpellier"],
            "Nouvelle-Aquitaine": ["Bordeaux"],
        },
    },
    {
        "name": "Netherlands", "code": "NL", "weight": 3, "tld": "nl", "sales_region": "EMEA", "currency": "EUR",
        "names": [("dutch", 90), ("anglo", 10)],
        "legal": ["B.V.", "N.V.", "B.V."],
        "phone": "+31 20 {d3} {d4}",
        "regions": {"North Holland": ["Amsterdam", "Haarlem"], "South Holland": ["Rotterdam", "The Hague", "Delft"], "Utrecht": ["Utrecht"], "North Brabant": ["Eindhoven"]},
    },
    {
        "name": "Australia", "code": "AU", "weight": 4, "tld": "com.au", "sales_region": "APAC", "currency": "AUD",
        "names": [("anglo", 80), ("chinese", 10), ("indian", 10)],
        "legal": ["Pty Ltd", "Ltd", ""],
        "phone": "+61 2 5550 {d4}",
        "regions": {"New South Wales": ["Sydney", "Newcastle"], "Victoria": ["Melbourne", "Geelong"], "Queensland": ["Brisbane", "Gold Coast"], "Western Australia": ["Perth"]},
    },
    {
        "name": "India", "code": "IN", "weight": 4, "tld": "in", "sales_region": "APAC", "currency": "INR",
        "names": [("indian", 100)],
        "legal": ["Pvt. Ltd.", "Ltd.", ""],
        "phone": "+91 80 {d4} {d4}",
        "regions": {"Karnataka": ["Bengaluru", "Mysuru"], "Maharashtra": ["Mumbai", "Pune"], "Telangana": ["Hyderabad"], "Tamil Nadu": ["Chennai"], "Delhi": ["New Delhi"]},
    },
    {
        "name": "Japan", "code": "JP", "weight": 3, "tld": "jp", "sales_region": "APAC", "currency": "JPY",
        "names": [("japanese", 100)],
        "legal": ["K.K.", "Co., Ltd.", ""],
        "phone": "+81 3 {d4} {d4}",
        "regions": {"Tokyo": ["Tokyo", "Shibuya", "Minato"], "Osaka": ["Osaka"], "Kanagawa": ["Yokohama", "Kawasaki"], "Aichi": ["Nagoya"]},
    },
    {
        "name": "Singapore", "code": "SG", "weight": 2, "tld": "sg", "sales_region": "APAC", "currency": "SGD",
        "names": [("chinese", 70), ("indian", 15), ("anglo", 15)],
        "legal": ["Pte. Ltd.", ""],
        "phone": "+65 6{d3} {d4}",
        "regions": {"Singapore": ["Singapore"]},
    },
    {
        "name": "Brazil", "code": "BR", "weight": 2, "tld": "com.br", "sales_region": "LATAM", "currency": "BRL",
        "names": [("portuguese", 90), ("italian", 10)],
        "legal": ["Ltda.", "S.A.", ""],
        "phone": "+55 11 9{d4}-{d4}",
        "regions": {"São Paulo": ["São Paulo", "Campinas"], "Rio de Janeiro": ["Rio de Janeiro", "Niterói"], "Minas Gerais": ["Belo Horizonte"], "Paraná": ["Curitiba"]},
    },
    {
        "name": "Mexico", "code": "MX", "weight": 1, "tld": "com.mx", "sales_region": "LATAM", "currency": "MXN",
        "names": [("hispanic", 100)],
        "legal": ["S.A. de C.V.", ""],
        "phone": "+52 55 {d4} {d4}",
        "regions": {"Mexico City": ["Mexico City"], "Jalisco": ["Guadalajara"], "Nuevo León": ["Monterrey"]},
    },
    {
        "name": "Spain", "code": "ES", "weight": 2, "tld": "es", "sales_region": "EMEA", "currency": "EUR",
        "names": [("hispanic", 95), ("anglo", 5)],
        "legal": ["S.L.", "S.A.", ""],
        "phone": "+34 91 {d3} {d2} {d2}",
        "regions": {"Community of Madrid": ["Madrid"], "Catalonia": ["Barcelona"], "Valencian Community": ["Valencia"], "Andalusia": ["Seville", "Málaga"]},
    },
    {
        "name": "Italy", "code": "IT", "weight": 2, "tld": "it", "sales_region": "EMEA", "currency": "EUR",
        "names": [("italian", 95), ("anglo", 5)],
        "legal": ["S.p.A.", "S.r.l.", ""],
        "phone": "+39 02 {d4} {d4}",
        "regions": {"Lombardy": ["Milan", "Bergamo"], "Lazio": ["Rome"], "Piedmont": ["Turin"], "Emilia-Romagna": ["Bologna"]},
    },
    {
        "name": "Sweden", "code": "SE", "weight": 2, "tld": "se", "sales_region": "EMEA", "currency": "SEK",
        "names": [("nordic", 90), ("anglo", 10)],
        "legal": ["AB", ""],
        "phone": "+46 8 {d3} {d3} {d2}",
        "regions": {"Stockholm County": ["Stockholm", "Solna"], "Västra Götaland": ["Gothenburg"], "Skåne": ["Malmö", "Lund"]},
    },
    {
        "name": "Ireland", "code": "IE", "weight": 1.5, "tld": "ie", "sales_region": "EMEA", "currency": "EUR",
        "names": [("anglo", 100)],
        "legal": ["Ltd", "DAC", ""],
        "phone": "+353 1 {d3} {d4}",
        "regions": {"Leinster": ["Dublin"], "Munster": ["Cork", "Limerick"], "Connacht": ["Galway"]},
    },
    {
        "name": "Switzerland", "code": "CH", "weight": 1.5, "tld": "ch", "sales_region": "EMEA", "currency": "CHF",
        "names": [("german", 70), ("french", 20), ("italian", 10)],
        "legal": ["AG", "SA", "GmbH"],
        "phone": "+41 44 {d3} {d2} {d2}",
        "regions": {"Zurich": ["Zurich", "Winterthur"], "Geneva": ["Geneva"], "Basel-Stadt": ["Basel"], "Vaud": ["Lausanne"]},
    },
]

# ------------------------------------------------------------------------------ people
FIRST_NAMES = {
    "anglo": [
        "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
        "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher", "Karen",
        "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily", "Andrew",
        "Michelle", "Joshua", "Amanda", "Kevin", "Melissa", "Brian", "Stephanie", "Ryan", "Rebecca", "Jacob",
        "Laura", "Nicholas", "Rachel", "Eric", "Megan", "Jonathan", "Hannah", "Justin", "Olivia", "Benjamin",
        "Emma", "Samuel", "Grace", "Nathan", "Chloe", "Tyler", "Abigail", "Aaron", "Katherine", "Adam", "Lauren",
        "Alexander", "Natalie", "Patrick", "Victoria", "Sean", "Claire", "Ethan", "Sophie", "Dylan", "Madison",
        "Owen", "Charlotte", "Liam", "Amelia", "Noah", "Harper", "Connor", "Kelly", "Gavin", "Erin", "Colin",
        "Molly", "Caleb", "Brooke", "Logan", "Jordan", "Taylor", "Morgan", "Casey", "Avery", "Riley", "Cameron",
    ],
    "hispanic": [
        "José", "María", "Carlos", "Ana", "Luis", "Carmen", "Jorge", "Lucía", "Miguel", "Sofía", "Javier",
        "Isabel", "Diego", "Elena", "Alejandro", "Paula", "Fernando", "Laura", "Ricardo", "Gabriela", "Andrés",
        "Valentina", "Pablo", "Daniela", "Sergio", "Camila", "Raúl", "Adriana", "Manuel", "Mariana",
    ],
    "indian": [
        "Aarav", "Priya", "Rahul", "Ananya", "Vikram", "Neha", "Arjun", "Pooja", "Rohan", "Divya", "Amit",
        "Sneha", "Sanjay", "Kavya", "Rajesh", "Deepa", "Suresh", "Meera", "Karthik", "Lakshmi", "Nikhil",
        "Shreya", "Aditya", "Ishita", "Varun", "Riya", "Anil", "Swati", "Manish", "Aparna",
    ],
    "chinese": [
        "Wei", "Li", "Jing", "Hui", "Ming", "Xin", "Yan", "Lei", "Jun", "Fang", "Hao", "Mei", "Tao", "Ying",
        "Chen", "Lin", "Kevin", "Grace", "Jason", "Vivian", "Eric", "Cindy", "Andy", "Joyce",
    ],
    "german": [
        "Lukas", "Anna", "Maximilian", "Laura", "Felix", "Lena", "Jonas", "Julia", "Leon", "Sarah", "Paul",
        "Katharina", "Tobias", "Johanna", "Florian", "Sophie", "Stefan", "Christina", "Andreas", "Sabine",
        "Markus", "Claudia", "Thomas", "Petra", "Jürgen", "Anja", "Matthias", "Miriam", "Sebastian", "Jana",
    ],
    "french": [
        "Louis", "Camille", "Hugo", "Léa", "Jules", "Manon", "Lucas", "Chloé", "Antoine", "Inès", "Nicolas",
        "Julie", "Pierre", "Émilie", "Thomas", "Clara", "Mathieu", "Élodie", "Julien", "Amélie", "Guillaume",
        "Sophie", "Olivier", "Céline", "François", "Aurélie", "Benoît", "Margaux",
    ],
    "portuguese": [
        "João", "Maria", "Pedro", "Ana", "Lucas", "Beatriz", "Gabriel", "Juliana", "Rafael", "Fernanda",
        "Mateus", "Larissa", "Thiago", "Camila", "Bruno", "Letícia", "Felipe", "Mariana", "Gustavo", "Carolina",
    ],
    "italian": [
        "Marco", "Giulia", "Alessandro", "Francesca", "Luca", "Chiara", "Matteo", "Sara", "Lorenzo", "Valentina",
        "Andrea", "Martina", "Davide", "Elena", "Simone", "Federica", "Giovanni", "Alessia", "Stefano", "Silvia",
    ],
    "dutch": [
        "Daan", "Emma", "Sem", "Julia", "Lars", "Sanne", "Thijs", "Lotte", "Bram", "Anouk", "Ruben", "Fleur",
        "Jeroen", "Marieke", "Pieter", "Eline", "Joost", "Femke", "Koen", "Iris",
    ],
    "nordic": [
        "Erik", "Anna", "Lars", "Maja", "Johan", "Elin", "Anders", "Sara", "Nils", "Ingrid", "Oskar", "Karin",
        "Henrik", "Linnea", "Magnus", "Frida", "Gustav", "Astrid", "Mikael", "Sofia",
    ],
    "japanese": [
        "Haruto", "Yui", "Sota", "Aoi", "Ren", "Hina", "Takumi", "Sakura", "Kenji", "Yuki", "Hiroshi", "Naomi",
        "Daiki", "Emi", "Kaito", "Mei", "Shota", "Ayaka", "Ryo", "Misaki",
    ],
}
LAST_NAMES = {
    "anglo": [
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
        "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson",
        "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill",
        "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins",
        "Edwards", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed",
        "Bailey", "Bell", "Kelly", "Howard", "Ward", "Cox", "Richardson", "Wood", "Watson", "Brooks", "Bennett",
        "Gray", "James", "Hughes", "Price", "Sanders", "Myers", "Long", "Ross", "Foster", "Powell", "Jenkins",
        "Perry", "Russell", "Sullivan", "Fisher", "Hamilton", "Graham", "Wallace", "Woods", "Cole", "West",
        "Jordan", "Owens", "Reynolds", "Ellis", "Harrison", "Gibson", "McDonald", "Marshall", "Murray",
        "O'Brien", "O'Connor", "Walsh", "Byrne", "Fitzgerald", "Kennedy", "Lynch", "Quinn", "Gallagher",
    ],
    "hispanic": [
        "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez", "Ramírez",
        "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Morales", "Ortiz", "Castillo", "Romero", "Vargas",
        "Ruiz", "Mendoza", "Jiménez", "Navarro", "Herrera", "Medina", "Castro", "Suárez", "Delgado",
    ],
    "indian": [
        "Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Rao", "Mehta", "Shah", "Joshi",
        "Desai", "Menon", "Kapoor", "Malhotra", "Agarwal", "Chopra", "Banerjee", "Mukherjee", "Pillai", "Verma",
        "Krishnan", "Bhat", "Chatterjee", "Saxena",
    ],
    "chinese": [
        "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu",
        "Hu", "Guo", "He", "Lin", "Tan", "Lim", "Ng", "Wong", "Lee", "Chan", "Cheng", "Tang",
    ],
    "german": [
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
        "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Lehmann", "Köhler",
    ],
    "french": [
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
        "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François",
    ],
    "portuguese": [
        "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes",
        "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes", "Vieira", "Barbosa",
    ],
    "italian": [
        "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
        "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti",
    ],
    "dutch": [
        "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
        "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
    ],
    "nordic": [
        "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson", "Svensson",
        "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson", "Lindberg", "Lindqvist",
    ],
    "japanese": [
        "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi",
        "Kato", "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue", "Kimura", "Hayashi",
    ],
}

# Job levels, most senior first, with how common each is in a marketing database.
JOB_LEVELS = [("C-Level", 4), ("VP", 7), ("Director", 14), ("Manager", 25), ("Individual Contributor", 50)]
DEPARTMENTS = [
    ("Marketing", 20), ("Sales", 18), ("IT", 15), ("Engineering", 11), ("Finance", 8), ("Operations", 9),
    ("Human Resources", 4), ("Customer Success", 6), ("Product", 5), ("Legal", 2), ("Procurement", 2),
]
# C-level titles and the department each belongs to.
C_LEVEL_TITLES = [
    ("Chief Executive Officer", "Executive"), ("Chief Marketing Officer", "Marketing"),
    ("Chief Revenue Officer", "Sales"), ("Chief Technology Officer", "Engineering"),
    ("Chief Information Officer", "IT"), ("Chief Information Security Officer", "IT"),
    ("Chief Financial Officer", "Finance"), ("Chief Operating Officer", "Operations"),
    ("Chief People Officer", "Human Resources"), ("Chief Customer Officer", "Customer Success"),
    ("Chief Product Officer", "Product"), ("General Counsel", "Legal"), ("Chief Data Officer", "IT"),
    ("Founder & CEO", "Executive"), ("President", "Executive"),
]
# Per department: the function's name in titles and its specialties (for Director/Manager titles)
# and individual-contributor titles.
DEPARTMENT_TITLES = {
    "Marketing": {
        "areas": ["Marketing", "Demand Generation", "Marketing Operations", "Product Marketing", "Digital Marketing", "Content Marketing", "Brand", "Field Marketing", "Growth"],
        "ic": ["Marketing Specialist", "Marketing Coordinator", "Marketing Operations Analyst", "Content Strategist", "SEO Specialist", "Campaign Specialist", "Marketing Automation Specialist", "Social Media Specialist", "Product Marketing Specialist", "Email Marketing Specialist"],
    },
    "Sales": {
        "areas": ["Sales", "Sales Operations", "Business Development", "Enterprise Sales", "Channel Sales", "Inside Sales", "Revenue Operations"],
        "ic": ["Account Executive", "Sales Development Representative", "Business Development Representative", "Sales Engineer", "Account Manager", "Solutions Consultant", "Sales Operations Analyst", "Enterprise Account Executive"],
    },
    "IT": {
        "areas": ["IT", "IT Operations", "Infrastructure", "Information Security", "Enterprise Applications", "Data Platform"],
        "ic": ["Systems Administrator", "IT Support Specialist", "Network Engineer", "Database Administrator", "Security Analyst", "Cloud Engineer", "Solutions Architect", "Business Systems Analyst"],
    },
    "Engineering": {
        "areas": ["Engineering", "Platform Engineering", "Data Engineering", "Quality Engineering", "Site Reliability"],
        "ic": ["Software Engineer", "Senior Software Engineer", "DevOps Engineer", "Data Engineer", "QA Engineer", "Staff Engineer", "Data Scientist", "Machine Learning Engineer"],
    },
    "Finance": {
        "areas": ["Finance", "FP&A", "Accounting", "Treasury", "Tax"],
        "ic": ["Financial Analyst", "Senior Accountant", "Accountant", "Accounts Payable Specialist", "Billing Specialist", "Payroll Specialist"],
    },
    "Operations": {
        "areas": ["Operations", "Supply Chain", "Logistics", "Business Operations", "Facilities"],
        "ic": ["Operations Analyst", "Supply Chain Analyst", "Logistics Coordinator", "Project Coordinator", "Operations Specialist", "Buyer Planner"],
    },
    "Human Resources": {
        "areas": ["Human Resources", "Talent Acquisition", "People Operations", "Learning & Development"],
        "ic": ["HR Generalist", "Recruiter", "Talent Acquisition Specialist", "HR Business Partner", "People Operations Specialist"],
    },
    "Customer Success": {
        "areas": ["Customer Success", "Customer Support", "Professional Services", "Customer Experience"],
        "ic": ["Customer Success Manager", "Support Engineer", "Implementation Consultant", "Technical Account Manager", "Customer Support Specialist"],
    },
    "Product": {
        "areas": ["Product", "Product Management", "Design", "User Research"],
        "ic": ["Product Manager", "Product Designer", "UX Researcher", "Product Owner", "Technical Product Manager"],
    },
    "Legal": {
        "areas": ["Legal", "Compliance", "Contracts"],
        "ic": ["Corporate Counsel", "Paralegal", "Compliance Analyst", "Contracts Specialist"],
    },
    "Procurement": {
        "areas": ["Procurement", "Strategic Sourcing", "Vendor Management"],
        "ic": ["Procurement Specialist", "Buyer", "Category Manager", "Sourcing Analyst"],
    },
}
VP_PREFIXES = [("VP of", 60), ("SVP,", 15), ("Vice President,", 15), ("EVP,", 5), ("Head of", 5)]
DIRECTOR_PREFIXES = [("Director of", 55), ("Senior Director,", 20), ("Director,", 15), ("Head of", 10)]
MANAGER_FORMS = [("{area} Manager", 65), ("Senior {area} Manager", 20), ("{area} Team Lead", 15)]
IC_SENIORITY = [("", 70), ("Senior ", 22), ("Lead ", 5), ("Principal ", 3)]
# Email address patterns, one per company.
EMAIL_PATTERNS = [("{first}.{last}", 55), ("{f}{last}", 20), ("{first}{l}", 8), ("{first}_{last}", 7), ("{first}", 5), ("{last}.{first}", 5)]

LEAD_SOURCES = [
    ("Website", 24), ("Organic Search", 12), ("Paid Search", 10), ("Webinar", 10), ("Trade Show", 8),
    ("LinkedIn", 8), ("Content Syndication", 8), ("Partner Referral", 5), ("Sales Outbound", 8),
    ("List Import", 5), ("Customer Referral", 2),
]
# Lead status by lead score band: (minimum score, [(status, weight)]).
LEAD_STATUS_BY_SCORE = [
    (100, [("Marketing Qualified", 45), ("Sales Accepted", 25), ("Sales Qualified", 20), ("Converted", 10)]),
    (50, [("Nurturing", 45), ("Contacted", 25), ("Marketing Qualified", 20), ("Recycled", 10)]),
    (0, [("New", 45), ("Nurturing", 30), ("Contacted", 15), ("Recycled", 6), ("Disqualified", 4)]),
]
PERSONAS = {
    "C-Level": "Executive Sponsor", "VP": "Economic Buyer", "Director": "Decision Maker",
    "Manager": "Influencer", "Individual Contributor": "Practitioner",
}
LANGUAGES = {"US": "en", "GB": "en", "CA": "en", "AU": "en", "IE": "en", "IN": "en", "SG": "en", "DE": "de", "CH": "de",
             "FR": "fr", "NL": "nl", "JP": "ja", "BR": "pt", "MX": "es", "ES": "es", "IT": "it", "SE": "sv"}

# ------------------------------------------------------------------------------ opportunities
# Salesforce's standard sales stages: (stage, probability %, is_closed, is_won, weight).
OPPORTUNITY_STAGES = [
    ("Prospecting", 10, False, False, 10), ("Qualification", 10, False, False, 10),
    ("Needs Analysis", 20, False, False, 8), ("Value Proposition", 50, False, False, 7),
    ("Id. Decision Makers", 60, False, False, 5), ("Perception Analysis", 70, False, False, 4),
    ("Proposal/Price Quote", 75, False, False, 6), ("Negotiation/Review", 90, False, False, 5),
    ("Closed Won", 100, True, True, 22), ("Closed Lost", 0, True, False, 23),
]
OPPORTUNITY_TYPES = [("New Business", 55), ("Expansion", 25), ("Renewal", 15), ("Upsell", 5)]
PRODUCTS = ["Platform", "Analytics Suite", "Data Cloud", "Enterprise License", "Professional Services",
            "Premium Support", "Integration Pack", "Security Add-on", "Starter Plan", "Team Seats"]
# Salesforce contact roles, with the job levels that usually hold them.
CONTACT_ROLES = {
    "C-Level": [("Executive Sponsor", 50), ("Economic Buyer", 40), ("Decision Maker", 10)],
    "VP": [("Decision Maker", 50), ("Economic Buyer", 30), ("Executive Sponsor", 20)],
    "Director": [("Decision Maker", 35), ("Evaluator", 35), ("Influencer", 30)],
    "Manager": [("Evaluator", 40), ("Technical Buyer", 30), ("Influencer", 30)],
    "Individual Contributor": [("Business User", 45), ("Technical Buyer", 30), ("Other", 25)],
}
LOSS_REASONS = ["Price", "Chose competitor", "No decision", "Timing", "Missing feature", "Budget cut"]

# ------------------------------------------------------------------------------ lists and campaigns
LIST_THEMES = [
    "Webinar Attendees – {topic}", "Webinar Registrants – {topic}", "Trade Show Leads – {event}",
    "Newsletter Subscribers – {region}", "Target Accounts – Tier {tier} Contacts", "Event Invitees – {city} Roadshow",
    "Sales Outreach – {quarter}", "Product Beta Interest – {topic}", "Content Download – {topic} Guide",
    "Nurture – {persona}", "Re-engagement – {quarter}", "Customer Advisory Board {year}",
]
CAMPAIGN_TYPES = [
    ("Webinar", 22, ["Registered", "Attended", "No Show", "Attended On-demand"]),
    ("Email", 25, ["Sent", "Opened", "Clicked", "Responded"]),
    ("Trade Show", 10, ["Visited Booth", "Met at Booth", "Scanned"]),
    ("Content Syndication", 10, ["Downloaded", "Responded"]),
    ("Paid Social", 10, ["Clicked", "Responded"]),
    ("Field Event", 8, ["Invited", "Registered", "Attended", "No Show"]),
    ("Nurture", 15, ["Member", "Engaged", "Responded"]),
]
RESPONDED_STATUSES = {"Attended", "Attended On-demand", "Clicked", "Responded", "Met at Booth", "Downloaded", "Engaged", "Visited Booth"}
CAMPAIGN_STATUSES = [("Completed", 45), ("In Progress", 35), ("Planned", 15), ("Aborted", 5)]
TOPICS = [
    "Data Strategy", "AI in Marketing", "Account-Based Marketing", "Customer Data Platforms", "Cloud Migration",
    "Zero Trust Security", "Revenue Operations", "Personalization at Scale", "Supply Chain Resilience",
    "Modern Analytics", "Privacy and Consent", "Intent Data", "Sales and Marketing Alignment", "Digital Transformation",
]
TRADE_SHOWS = ["SaaS Connect", "B2B Marketing Summit", "CloudWorld Expo", "DataCon", "RevOps Live", "Security Forum", "MarTech Week"]
ROADSHOW_CITIES = ["London", "New York", "Chicago", "Munich", "Paris", "Toronto", "Sydney", "Singapore", "Austin", "Amsterdam"]

# ------------------------------------------------------------------------------ events
# Web pages of the demo company's site: (path, title).
WEB_PAGES = [
    ("/", "Home"), ("/pricing", "Pricing"), ("/product", "Product overview"), ("/product/analytics", "Analytics"),
    ("/product/integrations", "Integrations"), ("/product/security", "Security"), ("/customers", "Customer stories"),
    ("/blog/abm-playbook", "The ABM playbook"), ("/blog/buying-groups", "Why buying groups matter"),
    ("/blog/intent-data", "Using intent data"), ("/resources/guides/cdp", "Guide: choosing a CDP"),
    ("/resources/webinars", "Webinars"), ("/docs/getting-started", "Docs: getting started"), ("/careers", "Careers"),
    ("/about", "About us"), ("/contact-sales", "Contact sales"), ("/demo", "Request a demo"),
    ("/compare/alternatives", "Compare alternatives"), ("/partners", "Partners"), ("/events", "Events"),
]
HIGH_INTENT_PATHS = {"/pricing", "/demo", "/contact-sales", "/compare/alternatives"}
REFERRERS = [("", 35), ("https://www.google.com/", 30), ("https://www.linkedin.com/", 12), ("https://www.bing.com/", 5),
             ("https://news.ycombinator.com/", 2), ("https://www.g2.com/", 6), ("email", 10)]
DEVICES = [("desktop", 72), ("mobile", 23), ("tablet", 5)]
FORMS = [
    ("Request a demo", "/demo", 15), ("Contact sales", "/contact-sales", 10), ("Download guide", "/resources/guides/cdp", 30),
    ("Webinar registration", "/resources/webinars", 25), ("Newsletter signup", "/blog/abm-playbook", 15), ("Free trial", "/pricing", 5),
]
EMAIL_SUBJECTS = [
    "Your {topic} checklist is ready", "[Webinar] {topic}: what leaders do differently", "A quick question about {topic}",
    "5 lessons on {topic} from our customers", "Invitation: {topic} roundtable", "New report: the state of {topic}",
    "Last chance to register: {topic}", "How {company} approaches {topic}", "Monthly digest: {topic}",
]
LINK_LABELS = ["Register now", "Read the report", "Watch on demand", "Book a meeting", "Download the guide", "See pricing"]
BOUNCE_REASONS = [("Mailbox full", 30), ("User unknown", 45), ("Domain not found", 10), ("Message rejected", 15)]
MOMENT_TYPES = [("Web", 45), ("Email", 25), ("Milestone", 30)]
